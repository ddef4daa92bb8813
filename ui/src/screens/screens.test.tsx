import { afterEach, describe, expect, it, vi } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import type { AppError, SessionView, StartInfo } from "../bindings";

vi.mock("@tauri-apps/api/core", () => ({
  Channel: class {
    onmessage: (m: unknown) => void = () => {};
  },
}));

const commands = vi.hoisted(() => ({
  listDrives: vi.fn(),
  listTokens: vi.fn(),
  fixedDiskWarning: vi.fn(),
  loginWithKey: vi.fn(),
  loginWithOtp: vi.fn(),
  pickFolder: vi.fn(),
  checkNewPassword: vi.fn(),
  checkNewKeyPassword: vi.fn(),
  firstLogin: vi.fn(),
  forgotPassword: vi.fn(),
  resetPassword: vi.fn(),
}));
vi.mock("../bindings", () => ({ commands }));

import { useState } from "react";
import { DrivePicker, ErrorBox } from "../components";
import { LoginScreen } from "./Login";
import { FirstLoginWizard, ResetPasswordWizard } from "./Wizards";
import { landing } from "../App";
import { BankContext, I18nContext } from "../context";
import { translate } from "../i18n";
import { onSessionEnded, run } from "../api";

const ok = <T,>(data: T) => Promise.resolve({ status: "ok" as const, data });
const fail = (error: AppError) => Promise.resolve({ status: "error" as const, error });

const start: StartInfo = {
  version: "0.1.0",
  settings: { server: "https://bank", bank_ca: "/ca.pem" },
  settings_error: null,
  idle_lock_seconds: 300,
  bank: null,
};
const remembered = { login: "olena.koval", drive: "/media/usb" };
const usb = {
  drive: { label: "STICK", mount_path: "/media/usb", file_system: "ext4", free_bytes: 1e9, total_bytes: 2e9, removable: true, read_only: false },
  has_key: true,
};

afterEach(() => {
  cleanup();
  vi.clearAllMocks();
  // No token plugged in unless a test says so.
  commands.listTokens.mockReturnValue(ok([]));
});
commands.listTokens.mockReturnValue(ok([]));

function fill(label: RegExp | string, value: string) {
  fireEvent.change(screen.getByLabelText(label), { target: { value } });
}

describe("login screen", () => {
  it("lists a token holding the key beside the drives, and asks for its PIN when it is chosen", async () => {
    commands.listDrives.mockReturnValue(ok([usb]));
    commands.listTokens.mockReturnValue(
      ok([
        {
          token: { label: "Olena token", model: "SoftHSM v2", manufacturer: "SoftHSM project", serial: "5481c25f" },
          medium: "pkcs11:serial=5481c25f",
          has_key: true,
        },
      ]),
    );
    commands.loginWithKey.mockReturnValue(new Promise(() => {}));
    render(
      <LoginScreen start={start} remembered={remembered} onLoggedIn={() => {}} onFirstLogin={() => {}} onRecover={() => {}} onReset={() => {}} onSettings={() => {}} />,
    );
    const token = await screen.findByRole("radio", { name: /Olena token/ });
    expect(screen.getByLabelText("Key password")).toBeTruthy();
    fireEvent.click(token);
    expect(screen.getByLabelText("Token PIN")).toBeTruthy();
    fill("Password", "correct horse battery");
    fill("Token PIN", "246810");
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    await waitFor(() =>
      expect(commands.loginWithKey).toHaveBeenCalledWith(
        "olena.koval",
        "correct horse battery",
        "pkcs11:serial=5481c25f",
        "246810",
        expect.anything(),
      ),
    );
  });

  it("fills in the remembered login and drive, and offers recovery on a wrong key password", async () => {
    commands.listDrives.mockReturnValue(ok([usb]));
    commands.loginWithKey.mockReturnValue(
      fail({ code: "wrong_key_password", message: "wrong key password", offers_recovery: true }),
    );
    const onRecover = vi.fn();
    render(
      <LoginScreen start={start} remembered={remembered} onLoggedIn={vi.fn()} onFirstLogin={vi.fn()} onRecover={onRecover} onReset={vi.fn()} onSettings={vi.fn()} />,
    );
    expect((screen.getByLabelText("Login") as HTMLInputElement).value).toBe("olena.koval");
    await waitFor(() => expect((screen.getByRole("radio") as HTMLInputElement).checked).toBe(true));
    fill("Password", "Correct-Horse-1");
    fill("Key password", "wrong key password!");
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    await screen.findByText("The key password (or the token's PIN) does not open the key.");
    expect(commands.loginWithKey).toHaveBeenCalledWith("olena.koval", "Correct-Horse-1", "/media/usb", "wrong key password!", expect.anything());
    // The key password field is cleared after a failure.
    expect((screen.getByLabelText("Key password") as HTMLInputElement).value).toBe("");
    const offer = document.getElementById("offer-recovery");
    expect(offer).not.toBeNull();
    fireEvent.click(offer as HTMLElement);
    expect(onRecover).toHaveBeenCalledWith("olena.koval", "/media/usb");
  });

  it("keeps a refused login generic: no detail from the bank", async () => {
    commands.listDrives.mockReturnValue(ok([usb]));
    commands.loginWithOtp.mockReturnValue(fail({ code: "credentials", message: "login failed (detail)", offers_recovery: false }));
    render(<LoginScreen start={start} remembered={remembered} onLoggedIn={vi.fn()} onFirstLogin={vi.fn()} onRecover={vi.fn()} onReset={vi.fn()} onSettings={vi.fn()} />);
    fireEvent.click(screen.getByRole("tab", { name: "With a one-time code" }));
    fill("Password", "pw");
    fill("Code from the authenticator app", "123456");
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("Login failed. Check your login, password and second factor.");
    expect(document.getElementById("offer-recovery")).toBeNull();
  });

  it("names the bank and its helpdesk, and the helpdesk again when the address is blocked", async () => {
    commands.listDrives.mockReturnValue(ok([usb]));
    commands.loginWithOtp.mockReturnValue(fail({ code: "locked", message: "too many failed logins", offers_recovery: false }));
    const bank = { name: "Банк Приклад", phone: "+380 44 000 00 00", email: "help@bank.example", hours: "", website: "" };
    render(
      <BankContext.Provider value={bank}>
        <LoginScreen start={start} remembered={remembered} onLoggedIn={vi.fn()} onFirstLogin={vi.fn()} onRecover={vi.fn()} onReset={vi.fn()} onSettings={vi.fn()} />
      </BankContext.Provider>,
    );
    const footer = screen.getByRole("contentinfo", { name: "Your bank" });
    expect(footer.textContent).toContain("Банк Приклад");
    expect(footer.textContent).toContain("Helpdesk: +380 44 000 00 00");
    expect(footer.textContent).toContain("E-mail: help@bank.example");
    // Fields the bank left empty are not shown.
    expect(footer.textContent).not.toContain("Hours");
    fireEvent.click(screen.getByRole("tab", { name: "With a one-time code" }));
    fill("Password", "pw");
    fill("Code from the authenticator app", "123456");
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Call the helpdesk of Банк Приклад: +380 44 000 00 00");
  });

  it("is up before the credential store answers, and fills the login in when it does", async () => {
    commands.listDrives.mockReturnValue(ok([]));
    const none = { login: null, drive: null };
    const props = { start, onLoggedIn: vi.fn(), onFirstLogin: vi.fn(), onRecover: vi.fn(), onReset: vi.fn(), onSettings: vi.fn() };
    const { rerender } = render(<LoginScreen {...props} remembered={none} />);
    const login = screen.getByLabelText("Login") as HTMLInputElement;
    expect(login.value).toBe("");
    rerender(<LoginScreen {...props} remembered={remembered} />);
    await waitFor(() => expect(login.value).toBe("olena.koval"));
    // The password is next.
    expect(document.activeElement).toBe(screen.getByLabelText("Password"));
  });

  it("keeps what the user typed when the credential store answers late", async () => {
    commands.listDrives.mockReturnValue(ok([]));
    const props = { start, onLoggedIn: vi.fn(), onFirstLogin: vi.fn(), onRecover: vi.fn(), onReset: vi.fn(), onSettings: vi.fn() };
    const { rerender } = render(<LoginScreen {...props} remembered={{ login: null, drive: null }} />);
    fill("Login", "petro.b");
    rerender(<LoginScreen {...props} remembered={remembered} />);
    await new Promise((r) => setTimeout(r, 10));
    expect((screen.getByLabelText("Login") as HTMLInputElement).value).toBe("petro.b");
  });

  it("chooses a drive plugged in with the login's key and asks for its key password", async () => {
    commands.listDrives.mockReturnValueOnce(ok([])).mockReturnValue(ok([usb]));
    render(
      <LoginScreen
        start={start}
        remembered={{ login: "olena.koval", drive: "/media/old-stick" }}
        onLoggedIn={vi.fn()}
        onFirstLogin={vi.fn()}
        onRecover={vi.fn()}
        onReset={vi.fn()}
        onSettings={vi.fn()}
      />,
    );
    // The next poll (every 2 s) sees the stick.
    const radio = await screen.findByRole("radio", { name: /STICK/ }, { timeout: 3000 });
    await waitFor(() => expect((radio as HTMLInputElement).checked).toBe(true), { timeout: 3000 });
    expect(document.activeElement).toBe(screen.getByLabelText("Key password"));
  });

  it("moves between the login tabs with the arrow keys, one tab stop", () => {
    commands.listDrives.mockReturnValue(ok([]));
    render(<LoginScreen start={start} remembered={remembered} onLoggedIn={vi.fn()} onFirstLogin={vi.fn()} onRecover={vi.fn()} onReset={vi.fn()} onSettings={vi.fn()} />);
    const key = screen.getByRole("tab", { name: "With the key" });
    const otp = screen.getByRole("tab", { name: "With a one-time code" });
    expect([key.tabIndex, otp.tabIndex]).toEqual([0, -1]);
    fireEvent.keyDown(key, { key: "ArrowRight" });
    expect(otp.getAttribute("aria-selected")).toBe("true");
    expect(document.activeElement).toBe(otp);
    expect([key.tabIndex, otp.tabIndex]).toEqual([-1, 0]);
    expect(screen.getByLabelText("Code from the authenticator app")).toBeTruthy();
    fireEvent.keyDown(otp, { key: "ArrowRight" });
    expect(key.getAttribute("aria-selected")).toBe("true");
    expect(document.activeElement).toBe(key);
  });

  it("shows no helpdesk the bank never gave", () => {
    commands.listDrives.mockReturnValue(ok([]));
    render(<LoginScreen start={start} remembered={remembered} onLoggedIn={vi.fn()} onFirstLogin={vi.fn()} onRecover={vi.fn()} onReset={vi.fn()} onSettings={vi.fn()} />);
    expect(screen.queryByRole("contentinfo")).toBeNull();
  });

  it("asks for every field before calling the app", async () => {
    commands.listDrives.mockReturnValue(ok([]));
    render(<LoginScreen start={start} remembered={remembered} onLoggedIn={vi.fn()} onFirstLogin={vi.fn()} onRecover={vi.fn()} onReset={vi.fn()} onSettings={vi.fn()} />);
    fireEvent.click(screen.getByRole("button", { name: "Log in" }));
    await screen.findByText("Fill in every field.");
    expect(commands.loginWithKey).not.toHaveBeenCalled();
  });
});

describe("first-login wizard", () => {
  it("checks each step locally and spends the initial password only at the end", async () => {
    commands.listDrives.mockReturnValue(ok([usb]));
    commands.checkNewPassword.mockReturnValue(ok(null));
    commands.checkNewKeyPassword.mockReturnValue(fail({ code: "key_password_policy", message: "at least 12 characters", offers_recovery: false }));
    render(<FirstLoginWizard remembered={null} onDone={vi.fn()} onCancel={vi.fn()} />);
    fill("Login", "olena.koval");
    fill("Initial password", "Init-1234");
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    fill("New password", "Brand-New-Pass-1");
    fill("New password again", "Brand-New-Pass-2");
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByText("The two entries differ.");
    fill("New password again", "Brand-New-Pass-1");
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByText("Key password again");
    fill("Key password", "short");
    fill("Key password again", "short");
    fireEvent.click(screen.getByRole("button", { name: "Next" }));
    await screen.findByText("The key password does not meet the policy.");
    expect(commands.firstLogin).not.toHaveBeenCalled();
  });
});

describe("landing after login", () => {
  const session = (stage: SessionView["stage"], threshold?: number): SessionView => ({
    login: "a",
    name: "A",
    stage,
    key_session: true,
    on_token: false,
    drive: null,
    certificate: null,
    reminder: threshold ? { days_left: threshold, threshold, expired: false } : null,
    idle_lock_seconds: 300,
    admin: null,
  });
  it("goes to the forced password change, the key screen near expiry, else the accounts", () => {
    expect(landing(session("change_password"))).toEqual({ name: "change-password" });
    expect(landing(session("sms_code"))).toEqual({ name: "sms-code" });
    expect(landing(session("key", 3))).toEqual({ name: "main", page: "key" });
    expect(landing(session("key", 30))).toEqual({ name: "main", page: "accounts" });
    expect(landing(session("otp"))).toEqual({ name: "main", page: "accounts" });
  });
  it("takes an admin's key session to the administration area", () => {
    const admin = { login: "a", name: "A", roles: ["helpdesk" as const], status: ["active"] };
    expect(landing({ ...session("key"), admin })).toEqual({ name: "admin", page: null });
    expect(landing({ ...session("change_password"), admin })).toEqual({ name: "change-password" });
  });
});

describe("drive picker", () => {
  it("shows no warning where the library says the path is on a USB drive", async () => {
    commands.fixedDiskWarning.mockReturnValue(ok(false));
    render(<DrivePicker drives={[usb]} chosen="/media/usb/keys" choose={() => {}} warnFixed />);
    await waitFor(() => expect(commands.fixedDiskWarning).toHaveBeenCalledWith("/media/usb/keys"));
    expect(screen.queryByRole("note")).toBeNull();
  });
  it("keeps a typed folder path even when a prefix of it is a listed drive", async () => {
    commands.fixedDiskWarning.mockImplementation((path: string) => ok(path.startsWith("/tmp")));
    const root = { ...usb, drive: { ...usb.drive, label: "System", mount_path: "/", removable: false }, has_key: false };
    let chosen = "";
    function Harness() {
      const [c, setC] = useState("");
      chosen = c;
      return <DrivePicker drives={[root]} chosen={c} choose={setC} warnFixed />;
    }
    render(<Harness />);
    const folder = screen.getByLabelText("Folder") as HTMLInputElement;
    let text = "";
    for (const ch of "/tmp/stick") {
      text += ch;
      fireEvent.change(folder, { target: { value: text } });
    }
    expect(folder.value).toBe("/tmp/stick");
    expect(chosen).toBe("/tmp/stick");
    expect((screen.getByRole("radio") as HTMLInputElement).checked).toBe(false);
    // The library says whether the chosen path gets the fixed-disk warning; the picker asks
    // it for the path now chosen and shows its answer.
    expect(commands.fixedDiskWarning).toHaveBeenLastCalledWith("/tmp/stick");
    expect((await screen.findByRole("note")).textContent).toMatch(/not a removable drive/);
    fireEvent.click(screen.getByRole("radio"));
    expect(chosen).toBe("/");
    expect(folder.value).toBe("");
  });
});

describe("an ended session", () => {
  it("is reported to the one handler whichever command meets it, and nothing else is", async () => {
    const ended = vi.fn();
    const off = onSessionEnded(ended);
    await expect(run(fail({ code: "refused", message: "no right", offers_recovery: false }))).rejects.toThrow("no right");
    expect(ended).not.toHaveBeenCalled();
    await expect(run(fail({ code: "session_expired", message: "session ended", offers_recovery: false }))).rejects.toThrow();
    expect(ended).toHaveBeenCalledTimes(1);
    expect(await run(ok(7))).toBe(7);
    off();
    await expect(run(fail({ code: "session_expired", message: "session ended", offers_recovery: false }))).rejects.toThrow();
    expect(ended).toHaveBeenCalledTimes(1);
  });
});

describe("the error box in Ukrainian", () => {
  it("says what happened in Ukrainian and folds the bank's English detail away", () => {
    const uk = { lang: "uk" as const, setLang: () => {}, t: (k: Parameters<typeof translate>[1], v?: Record<string, string | number>) => translate("uk", k, v) };
    render(
      <I18nContext.Provider value={uk}>
        <ErrorBox error={{ code: "refused", message: "the order needs a second signature", offers_recovery: false }} />
      </I18nContext.Provider>,
    );
    const alert = screen.getByRole("alert");
    expect(alert.querySelector("strong")?.textContent).toBe(translate("uk", "error.refused"));
    const detail = alert.querySelector("details");
    expect(detail).not.toBeNull();
    expect(detail?.open).toBe(false);
    expect(detail?.querySelector("summary")?.textContent).toBe("Подробиці (англійською)");
    expect(detail?.querySelector('[lang="en"]')?.textContent).toBe("the order needs a second signature");
  });

  it("shows the detail inline in English", () => {
    render(<ErrorBox error={{ code: "refused", message: "the order needs a second signature", offers_recovery: false }} />);
    expect(screen.getByRole("alert").textContent).toContain("the order needs a second signature");
    expect(screen.getByRole("alert").querySelector("details")).toBeNull();
  });
});

describe("forgot the password", () => {
  it("asks for the code with the key, then spends it only on a new password the policy takes", async () => {
    commands.listDrives.mockReturnValue(ok([usb]));
    commands.forgotPassword.mockReturnValue(ok("o•••@example.com"));
    commands.checkNewPassword.mockReturnValueOnce(fail({ code: "password_policy", message: "too short", offers_recovery: false }));
    commands.checkNewPassword.mockReturnValue(ok(null));
    const session = { login: "olena.koval", stage: "key" } as unknown as SessionView;
    commands.resetPassword.mockReturnValue(ok(session));
    const onLoggedIn = vi.fn();
    render(
      <I18nContext.Provider value={{ lang: "en", setLang: () => {}, t: (k, v) => translate("en", k, v) }}>
        <ResetPasswordWizard login="olena.koval" drive="/media/usb" onLoggedIn={onLoggedIn} onCancel={vi.fn()} />
      </I18nContext.Provider>,
    );
    await waitFor(() => expect(commands.listDrives).toHaveBeenCalled());
    fill("Key password", "key pass");
    fireEvent.click(screen.getByRole("button", { name: "Send the code" }));
    expect(await screen.findByText(/A code was sent to o•••@example.com/)).toBeTruthy();
    expect(commands.forgotPassword).toHaveBeenCalledWith("olena.koval", "/media/usb", "key pass");
    fill("Code from the mail", " 12345678 ");
    fill("New password", "short");
    fill("New password again", "short");
    fireEvent.click(screen.getByRole("button", { name: "Set the password" }));
    await screen.findByRole("alert");
    expect(commands.resetPassword).not.toHaveBeenCalled();
    fill("New password", "Harbour violet engine 88");
    fill("New password again", "Harbour violet engine 88");
    fireEvent.click(screen.getByRole("button", { name: "Set the password" }));
    await waitFor(() => expect(onLoggedIn).toHaveBeenCalledWith(session));
    expect(commands.resetPassword).toHaveBeenCalledWith("olena.koval", "/media/usb", "key pass", "12345678", "Harbour violet engine 88");
  });
});
