import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AccountView, DriveView, OrderView, TokenView } from "../bindings";
import { dismissible, opensKeyScreen, reminderLevel } from "./reminder";
import { IdleTimer } from "./idle";
import { formatMinor, groupIban } from "./money";
import { confirmed, emptyOrder, missingOrderField, nextTab, required } from "./forms";
import { orderActions } from "./orders";
import { formatBytes, isToken, newlyKeyed, preselect, sameDrives } from "./drives";
import { adminPages, canDo, dayEnd, dayStart, type AdminDoing, type AdminPage } from "./admin";
import type { AppError, Role } from "../bindings";
import { isoDay, presetPeriod, visibleRows } from "./statements";
import { sendsToBank } from "./bank";

describe("renewal reminder", () => {
  it("grows louder at each threshold and cannot be hidden in the last week", () => {
    const at = (threshold: number, expired = false) => ({ days_left: threshold, threshold, expired });
    expect([30, 14, 7, 3, 1].map((d) => reminderLevel(at(d)))).toEqual(["info", "notice", "warning", "urgent", "urgent"]);
    expect(reminderLevel(at(0, true))).toBe("expired");
    expect(dismissible("info")).toBe(true);
    expect(dismissible("notice")).toBe(true);
    expect(dismissible("warning")).toBe(false);
    expect(dismissible("urgent")).toBe(false);
    expect(opensKeyScreen(at(14))).toBe(false);
    expect(opensKeyScreen(at(7))).toBe(true);
    expect(opensKeyScreen(null)).toBe(false);
  });
});

describe("idle lock", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("fires once after the idle time, and activity postpones it", () => {
    const onIdle = vi.fn();
    const timer = new IdleTimer(300, onIdle);
    timer.touch();
    vi.advanceTimersByTime(299_000);
    timer.touch();
    vi.advanceTimersByTime(299_000);
    expect(onIdle).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
    timer.touch();
    vi.advanceTimersByTime(600_000);
    expect(onIdle).toHaveBeenCalledTimes(1);
  });

  it("stops", () => {
    const onIdle = vi.fn();
    const timer = new IdleTimer(5, onIdle);
    timer.touch();
    timer.stop();
    vi.advanceTimersByTime(10_000);
    expect(onIdle).not.toHaveBeenCalled();
  });
});

describe("money and IBANs", () => {
  it("formats minor units", () => {
    expect(formatMinor(123456789, "UAH")).toBe("1\u202f234\u202f567.89 UAH");
    expect(formatMinor(5)).toBe("0.05");
    expect(formatMinor(100000)).toBe("1\u202f000.00");
  });
  it("groups an IBAN by four", () => {
    expect(groupIban("UA213223130000026007233566001")).toBe("UA21 3223 1300 0002 6007 2335 6600 1");
  });
});

describe("forms", () => {
  it("asks for every field and the same entry twice", () => {
    expect(required("a", " ")).toBe("required");
    expect(required("a", "b")).toBeNull();
    expect(confirmed("", "")).toBe("required");
    expect(confirmed("abc", "abd")).toBe("mismatch");
    expect(confirmed("abc", "abc")).toBeNull();
  });
  it("names the first empty order field", () => {
    const o = emptyOrder("UA21", "UAH");
    expect(missingOrderField(o)).toBe("payee_name");
    expect(missingOrderField({ ...o, payee_name: "Acme", payee_tax_code: "1", payee_iban: "UA", amount: "1", purpose: "x" })).toBeNull();
  });
});

const account = (rights: Partial<AccountView["rights"]>): AccountView => ({
  iban: "UA1",
  holder: "Acme",
  currency: "UAH",
  balance: 1,
  signatures_required: 1,
  rights: { view: true, prepare: false, sign: false, send: false, ...rights },
});
const order = (status: OrderView["status"], signers: string[] = []): OrderView => ({
  id: 1,
  version: 1,
  order: { payer_iban: "UA1", payee_name: "P", payee_tax_code: "1", payee_iban: "UA2", amount: 100, currency: "UAH", purpose: "x" },
  status,
  signatures: signers.map((login) => ({ login, certificate: "01", signed_at: 0 })),
  signatures_required: 2,
  short_digest: "ABCD",
  reject_reason: null,
});

describe("order actions", () => {
  it("signs only with the right, on a key session, once per signer", () => {
    const signer = account({ sign: true, send: true });
    expect(orderActions(order("draft"), signer, "me", true)).toEqual({ sign: true, send: false });
    expect(orderActions(order("draft"), signer, "me", false).sign).toBe(false);
    expect(orderActions(order("partly_signed", ["me"]), signer, "me", true).sign).toBe(false);
    expect(orderActions(order("partly_signed", ["other"]), signer, "me", true).sign).toBe(true);
    expect(orderActions(order("draft"), account({ prepare: true }), "me", true).sign).toBe(false);
  });
  it("sends a signed order with the send right only", () => {
    expect(orderActions(order("signed"), account({ send: true }), "me", true).send).toBe(true);
    expect(orderActions(order("signed"), account({ sign: true }), "me", true).send).toBe(false);
    expect(orderActions(order("sent"), account({ send: true }), "me", true)).toEqual({ sign: false, send: false });
  });
});

const drive = (path: string, removable: boolean, has_key = false): DriveView => ({
  drive: { label: path, mount_path: path, file_system: "ext4", free_bytes: 1, total_bytes: 2, removable, read_only: false },
  has_key,
});

describe("drives", () => {
  it("preselects the remembered drive, else one with the key, else a USB drive", () => {
    const list = [drive("/media/usb", true), drive("/home", false, true)];
    expect(preselect(list, "/media/usb")).toBe("/media/usb");
    expect(preselect(list, "/home/olena/key-folder")).toBe("/home/olena/key-folder");
    expect(preselect(list, null)).toBe("/home");
    expect(preselect([drive("/media/usb", true)], null)).toBe("/media/usb");
    expect(preselect([drive("/", false)], null)).toBeNull();
  });
  it("preselects a token holding the login's key before a drive, and tells tokens from paths", () => {
    const token = (serial: string, has_key: boolean): TokenView => ({
      token: { label: "Token", model: "SoftHSM v2", manufacturer: "SoftHSM project", serial },
      medium: `pkcs11:serial=${serial}`,
      has_key,
    });
    const list = [drive("/media/usb", true), drive("/home", false, true)];
    expect(preselect(list, null, [token("1", false), token("2", true)])).toBe("pkcs11:serial=2");
    expect(preselect(list, null, [token("1", false)])).toBe("/home");
    expect(preselect(list, "/media/usb", [token("2", true)])).toBe("/media/usb");
    expect(isToken("pkcs11:serial=2")).toBe(true);
    expect(isToken("/media/olena/pkcs11:")).toBe(false);
  });
  it("notices a plugged or pulled drive", () => {
    const a = [drive("/media/usb", true)];
    expect(sameDrives(a, [drive("/media/usb", true)])).toBe(true);
    expect(sameDrives(a, [])).toBe(false);
  });
  it("formats sizes", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1_500_000)).toBe("1.5 MB");
    expect(formatBytes(32_000_000_000)).toBe("32 GB");
  });
});

describe("administration by role", () => {
  it("shows each role its pages", () => {
    const cases: [Role[], AdminPage[]][] = [
      [["helpdesk"], ["users", "requests"]],
      [["security_officer"], ["users", "requests"]],
      [["account_manager"], ["users", "requests"]],
      [["auditor"], ["requests", "audit"]],
      [["helpdesk", "auditor"], ["users", "requests", "audit"]],
      [[], []],
    ];
    for (const [roles, pages] of cases) expect(adminPages(roles)).toEqual(pages);
  });
  it("shows each role only the buttons the bank would allow", () => {
    const cases: [Role, AdminDoing, boolean, boolean][] = [
      ["helpdesk", "unlock", false, true],
      ["helpdesk", "unlock", true, false],
      ["security_officer", "unlock", true, true],
      ["helpdesk", "temp_password", false, true],
      ["helpdesk", "emergency_password", false, false],
      ["security_officer", "emergency_password", false, true],
      ["helpdesk", "suspend", false, true],
      ["helpdesk", "activate", false, false],
      ["security_officer", "activate", false, true],
      ["account_manager", "unlock", false, false],
      ["auditor", "revoke", false, false],
      ["security_officer", "revoke", true, true],
    ];
    for (const [role, what, onAdmin, want] of cases) expect(canDo([role], what, onAdmin), `${role} ${what} ${onAdmin}`).toBe(want);
  });
  it("reads typed days as UTC bounds", () => {
    expect(dayStart("2026-12-01")).toBe(Date.UTC(2026, 11, 1) / 1000);
    expect(dayEnd("2026-12-01")).toBe(Date.UTC(2026, 11, 1) / 1000 + 86_399);
    expect(dayStart("2026-02-30")).toBeNull();
    expect(dayStart("1.12.2026")).toBeNull();
    expect(dayStart("")).toBeNull();
    expect(dayEnd("x")).toBeNull();
  });
});

describe("statement periods and long tables", () => {
  it("gives each preset its days", () => {
    const now = new Date(2026, 2, 1, 10, 0); // 1 March 2026
    expect(presetPeriod("today", now)).toEqual({ from: "2026-03-01", to: "2026-03-01" });
    expect(presetPeriod("yesterday", now)).toEqual({ from: "2026-02-28", to: "2026-02-28" });
    expect(presetPeriod("thisMonth", now)).toEqual({ from: "2026-03-01", to: "2026-03-01" });
    expect(presetPeriod("lastMonth", now)).toEqual({ from: "2026-02-01", to: "2026-02-28" });
    expect(presetPeriod("lastMonth", new Date(2026, 0, 15))).toEqual({ from: "2025-12-01", to: "2025-12-31" });
    expect(isoDay(new Date(2024, 1, 29))).toBe("2024-02-29");
  });

  it("renders only the rows on screen, with some to spare", () => {
    expect(visibleRows(0, 480, 36, 0)).toEqual({ first: 0, last: 0 });
    expect(visibleRows(0, 480, 36, 10_000, 10)).toEqual({ first: 0, last: 24 });
    expect(visibleRows(36_000, 480, 36, 10_000, 10)).toEqual({ first: 990, last: 1024 });
    expect(visibleRows(359_520, 480, 36, 10_000, 10)).toEqual({ first: 9976, last: 10_000 });
    const { first, last } = visibleRows(123_456, 480, 36, 10_000);
    expect(last - first).toBeLessThan(50);
  });
});

describe("messages that send the user to the bank", () => {
  it("name the helpdesk for a lock and an unusable key, not for a typo", () => {
    const e = (code: AppError["code"], offers_recovery = false): AppError => ({ code, message: "", offers_recovery });
    const cases: [AppError, boolean][] = [
      [e("locked"), true],
      [e("wrong_key_password", true), true],
      [e("broken_key", true), true],
      [e("certificate_expired", true), true],
      [e("certificate_revoked", true), true],
      [e("certificate_not_activated"), true],
      [e("other", true), true],
      [e("credentials"), false],
      [e("network"), false],
      [e("invalid_order"), false],
      [e("session_expired"), false],
    ];
    for (const [error, want] of cases) expect([error.code, sendsToBank(error)]).toEqual([error.code, want]);
  });
});

describe("login tabs from the keyboard", () => {
  it("move with the arrows, wrapping, and jump with Home and End", () => {
    const cases: ["key" | "otp", string, "key" | "otp" | null][] = [
      ["key", "ArrowRight", "otp"],
      ["otp", "ArrowRight", "key"],
      ["key", "ArrowLeft", "otp"],
      ["otp", "ArrowLeft", "key"],
      ["key", "ArrowDown", "otp"],
      ["otp", "ArrowUp", "key"],
      ["otp", "Home", "key"],
      ["key", "End", "otp"],
      ["key", "Enter", null],
      ["otp", "a", null],
    ];
    for (const [from, key, want] of cases) expect([from, key, nextTab(from, key)]).toEqual([from, key, want]);
  });
});

describe("a drive or token plugged in with the key", () => {
  const drive = (mount_path: string, has_key: boolean): DriveView => ({
    drive: { label: mount_path, mount_path, file_system: "vfat", free_bytes: 1, total_bytes: 2, removable: true, read_only: false },
    has_key,
  });
  const token = (medium: string, has_key: boolean): TokenView => ({
    token: { label: "t", model: "m", manufacturer: "x", serial: medium },
    medium,
    has_key,
  });
  it("is told apart from what was there before, and nothing arrives at the first look", () => {
    const before = new Set(["/media/a"]);
    const cases: [Set<string> | null, DriveView[], TokenView[], string | null][] = [
      [null, [drive("/media/b", true)], [], null],
      [before, [drive("/media/a", true)], [], null],
      [before, [drive("/media/a", true), drive("/media/b", true)], [], "/media/b"],
      [before, [drive("/media/a", true), drive("/media/c", false)], [], null],
      [before, [drive("/media/a", true)], [token("pkcs11:serial=1", true)], "pkcs11:serial=1"],
      [before, [], [], null],
    ];
    for (const [was, drives, tokens, want] of cases) expect(newlyKeyed(was, drives, tokens)).toBe(want);
  });
});
