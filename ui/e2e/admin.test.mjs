// The administration area in the real app window, against a real bank whose certificates wait
// for their key letters: admins log in with their own keys (enrolled with `tresor-admin`
// beforehand) and see only their roles' screens; a helpdesk admin finds a user and unlocks
// them; a security officer activates a client's key from the fingerprint on its PDF letter;
// one officer asks for an emergency password and a second, in the same window after the
// first logs out, approves it and alone is shown the secret, with which the user recovers.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TARGET, T, click, openApp, shot, shown, startBank, startDriver, stopDriver, type } from "./support.mjs";

const PASSWORD = "correct horse battery";
const KEY_PASSWORD = "admin key password";
const CLIENT = "olena.client";
const ACCOUNT = "UA073052992600000000000000002";

const dir = mkdtempSync(join(tmpdir(), "tresor-admin-e2e-"));
let bank;
const drives = {};

function cli(bin, args, env) {
  return execFileSync(join(TARGET, "debug", bin), ["--json", ...args], {
    env: {
      ...process.env,
      TRESOR_SERVER: bank.server,
      TRESOR_BANK_CA: bank.ca,
      TRESOR_CLIENT_CONFIG: join(dir, "cli.toml"),
      ...env,
    },
    encoding: "utf8",
  });
}

/** An admin made by break-glass (a new bank has no two officers), enrolled with tresor-admin. */
function enrollAdmin(login, roles) {
  const initial = bank.admin("admin", "add", login, "--name", `Admin ${login}`, "--roles", roles).trim().split("\n").at(-1).trim();
  drives[login] = join(dir, login);
  mkdirSync(drives[login]);
  cli("tresor-admin", ["first-login"], {
    TRESOR_ADMIN_LOGIN: login,
    TRESOR_DRIVE: drives[login],
    TRESOR_ADMIN_PASSWORD: initial,
    TRESOR_NEW_PASSWORD: PASSWORD,
    TRESOR_KEY_PASSWORD: KEY_PASSWORD,
  });
}

before(async () => {
  bank = await startBank(dir, "bank", 'ip_max_points = 1000\nactivation = "letter"\n');
  bank.admin("account", "add", ACCOUNT, "--holder", "Olena Trade LLC", "--balance", "100.00");
  const initial = bank.admin("user", "add", CLIENT, "--name", "Olena Client").trim().split("\n").at(-1).trim();
  bank.admin("rights", "grant", CLIENT, ACCOUNT, "view");
  enrollAdmin("help.desk", "helpdesk");
  enrollAdmin("sec.one", "security_officer");
  enrollAdmin("sec.two", "security_officer");
  drives[CLIENT] = join(dir, CLIENT);
  mkdirSync(drives[CLIENT]);
  cli("tresor", ["first-login", "--login", CLIENT], {
    TRESOR_DRIVE: drives[CLIENT],
    TRESOR_PASSWORD: initial,
    TRESOR_NEW_PASSWORD: PASSWORD,
    TRESOR_KEY_PASSWORD: KEY_PASSWORD,
  });
  await startDriver(bank, { TRESOR_CLIENT_CONFIG: join(dir, "client.toml") });
});

after(() => {
  stopDriver();
  bank?.proc.kill();
});

async function loginAs(app, login) {
  await shown(app, '[data-test="login-screen"]');
  await type(app, "#login", login);
  await type(app, "#drive-path", drives[login]);
  await type(app, "#password", PASSWORD);
  await type(app, "#key-password", KEY_PASSWORD);
  await click(app, "#login-submit");
  await shown(app, '[data-test="admin-area"]');
}

async function logout(app) {
  await click(app, "#logout");
  await click(app, "#login-again");
}

async function openUser(app, login) {
  await click(app, "#admin-nav-users");
  await type(app, "#admin-query", login);
  await click(app, "#admin-find");
  await click(app, `button[data-login="${login}"]`);
  return shown(app, '[data-test="admin-user"]');
}

const asOfficer = {
  TRESOR_ADMIN_LOGIN: "sec.one",
  TRESOR_ADMIN_PASSWORD: PASSWORD,
  TRESOR_KEY_PASSWORD: KEY_PASSWORD,
};

test("a helpdesk admin sees the helpdesk's screens, finds a user and unlocks them", async () => {
  // With two officers, break-glass needs a window: the officer locks the user with tresor-admin.
  cli("tresor-admin", ["user", "lock", CLIENT], { ...asOfficer, TRESOR_DRIVE: drives["sec.one"] });
  const app = await openApp();
  try {
    await loginAs(app, "help.desk");
    // The helpdesk's menu: users and requests, no audit log.
    assert.ok(await (await app.$("#admin-nav-users")).isExisting());
    assert.ok(!(await (await app.$("#admin-nav-audit")).isExisting()));
    const user = await openUser(app, CLIENT);
    await app.waitUntil(async () => (await user.getText()).includes("locked"), T);
    // No emergency password and no key activation for the helpdesk.
    assert.ok(!(await (await app.$("#admin-ask-emergency")).isExisting()));
    assert.ok(await (await app.$("#admin-ask-temp")).isExisting());
    await shot(app, "admin-helpdesk-user");
    await click(app, "#admin-unlock");
    const state = await app.$('[data-test="admin-user-state"]');
    await app.waitUntil(async () => !(await state.getText()).includes("locked"), T);
    await logout(app);
  } finally {
    await app.deleteSession();
  }
  const shownUser = JSON.parse(cli("tresor-admin", ["user", "show", CLIENT], { ...asOfficer, TRESOR_DRIVE: drives["sec.one"] }));
  assert.ok(!shownUser.summary.status.includes("locked"), JSON.stringify(shownUser));
});

test("a security officer activates a key from the fingerprint on its letter", async () => {
  // The client's first login is held for its letter.
  assert.throws(() => cli("tresor", ["login", "--login", CLIENT], { TRESOR_DRIVE: drives[CLIENT], TRESOR_PASSWORD: PASSWORD, TRESOR_KEY_PASSWORD: KEY_PASSWORD }));
  const letter = join(dir, "letter.pdf");
  cli("tresor", ["key", "letter", "--login", CLIENT, "--output", letter], { TRESOR_DRIVE: drives[CLIENT] });
  const text = execFileSync("pdftotext", ["-layout", letter, "-"], { encoding: "utf8" });
  const fingerprint = text
    .split("\n")
    .map((l) => l.trim())
    .find((l) => /^([0-9A-F]{4} ){15}[0-9A-F]{4}$/.test(l));
  assert.ok(fingerprint, text);

  const app = await openApp();
  try {
    await loginAs(app, "sec.one");
    const user = await openUser(app, CLIENT);
    await app.waitUntil(async () => (await user.getText()).includes("waiting for its key letter"), T);
    await type(app, "#admin-fingerprint", fingerprint);
    await shot(app, "admin-activate");
    await click(app, "#admin-activate");
    await app.waitUntil(async () => !(await user.getText()).includes("waiting for its key letter"), T);
    await logout(app);
  } finally {
    await app.deleteSession();
  }
  cli("tresor", ["login", "--login", CLIENT], { TRESOR_DRIVE: drives[CLIENT], TRESOR_PASSWORD: PASSWORD, TRESOR_KEY_PASSWORD: KEY_PASSWORD });
});

test("an emergency password asked by one officer, approved by another, who alone sees it", async () => {
  const app = await openApp();
  let secret;
  try {
    await loginAs(app, "sec.one");
    await openUser(app, CLIENT);
    await click(app, "#admin-ask-emergency");
    await shown(app, '[data-test="notice"]');
    // The requester cannot approve their own request: no Approve button, only Withdraw.
    await click(app, "#admin-nav-requests");
    const row = await shown(app, '[data-test="admin-request"]');
    const id = await row.getAttribute("data-id");
    assert.ok(!(await (await app.$(`button[data-approve="${id}"]`)).isExisting()));
    assert.ok(await (await app.$(`button[data-reject="${id}"]`)).isExisting());
    await logout(app);

    await loginAs(app, "sec.two");
    await click(app, "#admin-nav-requests");
    await click(app, `button[data-approve="${id}"]`);
    const shownSecret = await shown(app, '[data-test="admin-secret-value"]');
    secret = (await shownSecret.getText()).trim();
    assert.ok(secret.length >= 12, secret);
    await shot(app, "admin-secret");
    await click(app, "#admin-copy");
    await click(app, "#admin-secret-done");
    assert.ok(!(await (await app.$('[data-test="admin-secret-value"]')).isExisting()));
    const status = await app.$(`[data-id="${id}"] [data-test="admin-request-status"]`);
    assert.equal(await status.getText(), "approved");
    await logout(app);
  } finally {
    await app.deleteSession();
  }
  // The user recovers with it on a new drive.
  const fresh = join(dir, "recovered");
  mkdirSync(fresh);
  const done = JSON.parse(
    cli("tresor", ["key", "recover", "--login", CLIENT], {
      TRESOR_DRIVE: fresh,
      TRESOR_PASSWORD: PASSWORD,
      TRESOR_EMERGENCY_PASSWORD: secret,
      TRESOR_KEY_PASSWORD: KEY_PASSWORD,
    }),
  );
  assert.equal(done.done, "recovered", JSON.stringify(done));
});

test("a user blocks the key from the login screen, with the password alone", async () => {
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    await click(app, "#go-block");
    await shown(app, '[data-test="block-key"]');
    await type(app, "#block-login", CLIENT);
    await type(app, "#block-password", PASSWORD);
    // Not without the confirmation.
    await click(app, "#block-submit");
    await shown(app, '[data-test="error"]');
    await click(app, "#block-confirm");
    await shot(app, "block-key");
    await click(app, "#block-submit");
    const notice = await shown(app, '[data-test="notice"]');
    assert.match(await notice.getText(), /blocked/);
  } finally {
    await app.deleteSession();
  }
  const shownUser = JSON.parse(cli("tresor-admin", ["user", "show", CLIENT], { ...asOfficer, TRESOR_DRIVE: drives["sec.one"] }));
  // Every certificate is revoked now (the recovered one as suspended), and the user too.
  assert.ok(shownUser.certificates.every((c) => c.revoked), JSON.stringify(shownUser.certificates));
  assert.ok(shownUser.certificates.some((c) => c.revoked[1] === "suspended"), JSON.stringify(shownUser.certificates));
});
