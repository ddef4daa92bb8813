// The bank's voice after login, in the real app window, with a real SMTP server on loopback
// (tests/smtp_server.py, aiosmtpd) whose mails Python's `email` package reads back: the first
// key login of a user without an address opens the profile, where the address is confirmed
// with the code mailed to it; a user who forgot the password sets a new one with the key and
// the code from the mail, from the login screen. And a drive plugged in with the user's key
// (a folder appearing in TRESOR_MEDIA_DIR, which the app lists as removable drives) is chosen
// and the key password asked for.
//
// Needs what app.test.mjs needs, and python3 with aiosmtpd (scripts/test installs both).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { T, click, mailedCode, mails, onboard, openApp, shot, shown, startBank, startDriver, startSmtp, stopDriver, type } from "./support.mjs";

const LOGIN = "voice.user";
const PASSWORD = "orchard velvet compass";
const NEW_PASSWORD = "harbour violet engine";
const KEY_PASSWORD = "voice stick key password";
const EMAIL = "voice.user@example.com";
const ACCOUNT = "UA343052990000026000000000077";

const dir = mkdtempSync(join(tmpdir(), "tresor-voice-e2e-"));
const stick = join(dir, "stick");
const media = join(dir, "media");
let bank;
let smtp;

before(async () => {
  mkdirSync(stick);
  mkdirSync(media);
  smtp = await startSmtp(join(dir, "mail"));
  const mail = `[mail]\nsmtp = "127.0.0.1"\nport = ${smtp.port}\nsecurity = "none"\nfrom = "Test Bank <noreply@bank.example>"\n`;
  bank = await startBank(dir, "bank", "ip_max_points = 1000\n", mail);
  bank.admin("account", "add", ACCOUNT, "--holder", "Voice LLC", "--balance", "100.00");
  await startDriver(bank, { TRESOR_CLIENT_CONFIG: join(dir, "client.toml"), TRESOR_LETTER_DIR: dir, TRESOR_MEDIA_DIR: media });
});

after(() => {
  stopDriver();
  bank?.proc.kill();
  smtp?.proc.kill();
});

async function keyLogin(app, password) {
  await shown(app, '[data-test="login-screen"]');
  await type(app, "#login", LOGIN);
  await type(app, "#password", password);
  await type(app, "#drive-path", stick);
  await type(app, "#key-password", KEY_PASSWORD);
  await click(app, "#login-submit");
}

test("the first key login asks for an address, confirmed with the code from the mail", async () => {
  // Created without an address: the initial password is handed over by the admin.
  const initial = bank.admin("user", "add", LOGIN, "--name", "Voice User").trim().split("\n").at(-1).trim();
  bank.admin("rights", "grant", LOGIN, ACCOUNT, "view");
  const app = await openApp();
  try {
    await onboard(app, LOGIN, initial, stick, PASSWORD, KEY_PASSWORD);
    await click(app, "#wizard-next");
    await click(app, "#wizard-next");
    await shown(app, '[data-test="first-login-done"]');
    await click(app, "#first-login-to-login");
    await keyLogin(app, PASSWORD);

    // No address yet: the profile, not the accounts.
    const profile = await shown(app, '[data-test="profile"]');
    assert.match(await profile.getText(), /No confirmed address|Немає підтвердженої адреси/);
    await shot(app, "profile-first-login");
    await type(app, "#profile-new-email", EMAIL);
    await click(app, "#profile-send-code");
    await shown(app, '[data-test="profile-code-sent"]');
    const code = await mailedCode(smtp, EMAIL, "confirm your address");
    // A wrong code first: refused, and the address stays unconfirmed.
    await type(app, "#profile-code", code === "00000000" ? "11111111" : "00000000");
    await click(app, "#profile-confirm");
    await shown(app, '[data-test="error"]');
    await type(app, "#profile-code", code);
    await click(app, "#profile-confirm");
    const note = await shown(app, '[data-test="profile-note"]');
    assert.ok((await note.getText()).includes(EMAIL), await note.getText());
    assert.ok((await (await app.$('[data-test="profile-email"]')).getText()).includes(EMAIL));
    // A notice the user does not want: turned off and kept; a security one cannot be.
    await click(app, "#notice-incoming_payment");
    await app.waitUntil(async () => (await (await app.$('[data-test="profile-note"]')).getText()).match(/Saved|Збережено/), T);
    assert.equal(await (await app.$("#notice-incoming_payment")).isSelected(), false);
    assert.equal(await (await app.$("#notice-new_address")).isEnabled(), false);
    await click(app, "#logout");
    await shown(app, '[data-test="logged-out"]');
  } finally {
    await app.deleteSession();
  }
});

test("a user who forgot the password sets a new one with the key and the code from the mail", async () => {
  const before = mails(smtp).length;
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    await type(app, "#login", LOGIN);
    await click(app, "#go-reset");
    await shown(app, '[data-test="reset-password"]');
    await type(app, "#drive-path", stick);
    await type(app, "#rs-key", KEY_PASSWORD);
    await click(app, "#reset-next");
    const sent = await shown(app, '[data-test="reset-sent"]');
    assert.match(await sent.getText(), /v•••@example\.com/);
    await shot(app, "reset-code-sent");
    const code = await mailedCode(smtp, EMAIL, "code for a new password", before);
    await type(app, "#rs-code", code);
    await type(app, "#rs-new", NEW_PASSWORD);
    await type(app, "#rs-new-again", NEW_PASSWORD);
    await click(app, "#reset-next");
    // Logged in with the key: the address is confirmed, so the accounts.
    await shown(app, '[data-test="accounts"]');
    await click(app, "#logout");
    await shown(app, '[data-test="logged-out"]');
    await click(app, "#login-again");
    // The new password opens the next login; the old one no longer does.
    await keyLogin(app, PASSWORD);
    await shown(app, '[data-test="error"]');
    await keyLogin(app, NEW_PASSWORD);
    await shown(app, '[data-test="accounts"]');
  } finally {
    await app.deleteSession();
  }
  // The reset was told to the address, as a security notice.
  await waitForMail("password changed", before);
});

async function waitForMail(about, after) {
  for (let i = 0; i < 120; i++) {
    if (mails(smtp).slice(after).some((m) => m.to === EMAIL && m.subject.includes(about))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.fail(`no mail about ${about}`);
}

test("a drive plugged in with the login's key is chosen, and the key password is next", async () => {
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    await type(app, "#login", LOGIN);
    await type(app, "#password", NEW_PASSWORD);
    // Plugged in now: a drive holding this login's key.
    const plugged = join(media, "VOICE-STICK");
    cpSync(stick, plugged, { recursive: true });
    await app.waitUntil(
      async () => {
        const radio = await app.$(`input[type="radio"][value="${plugged}"]`);
        return (await radio.isExisting()) && (await radio.isSelected());
      },
      { ...T, timeoutMsg: "the plugged-in drive chosen" },
    );
    await app.waitUntil(async () => (await app.execute(() => document.activeElement?.id)) === "key-password", {
      ...T,
      timeoutMsg: "the key password field focused",
    });
    await shot(app, "drive-plugged");
    // The login goes through with that drive.
    await type(app, "#key-password", KEY_PASSWORD);
    await click(app, "#login-submit");
    await shown(app, '[data-test="accounts"]');
  } finally {
    await app.deleteSession();
  }
});
