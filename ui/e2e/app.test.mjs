// End to end in the real app window: tauri-driver + WebKitWebDriver drive the built
// `tresor-app` under Xvfb, against a real `tresor-bank` on its embedded SQLite. Run by
// scripts/test inside a D-Bus session with gnome-keyring, so the app's OS credential store is
// real too; at the end the whole store is read back and searched for every password used.
//
// Needs: DISPLAY, tauri-driver on PATH (or TAURI_DRIVER), the workspace built
// (CARGO_TARGET_DIR/debug/{tresor-app,tresor-bank}).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHmac } from "node:crypto";
import {
  T,
  click,
  onboard as onboardWith,
  openApp,
  shot,
  shown,
  startBank as startBankIn,
  startDriver as startDriverFor,
  stopDriver,
  type,
} from "./support.mjs";


const LOGIN = "olena.koval";
const PASSWORD = "correct horse battery";
const KEY_PASSWORD = "stick key password";
const NEW_KEY_PASSWORD = "a new stick key password";
const PAYER = "UA073052992600000000000000002";
const PAYEE = "UA123052992600000000000000009";
const secrets = [PASSWORD, KEY_PASSWORD, NEW_KEY_PASSWORD];

const dir = mkdtempSync(join(tmpdir(), "tresor-app-e2e-"));
const stick = join(dir, "stick");
const POLICY = "certificate_days = 30\nrenewal_window_days = 30\nip_max_points = 1000\n";
let bank;

const lastLine = (out) => out.trim().split("\n").at(-1).trim();
const startBank = (name, policy) => startBankIn(dir, name, policy);
const startDriver = (b) => startDriverFor(b, { TRESOR_CLIENT_CONFIG: join(dir, "client.toml"), TRESOR_LETTER_DIR: dir });
const admin = (...args) => bank.admin(...args);

/** An authenticator app's code for an otpauth:// URI (RFC 6238), as a phone would show it. */
function totpCode(uri, at = Date.now() / 1000) {
  const params = new URL(uri).searchParams;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of params.get("secret").replace(/=+$/, "").toUpperCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const period = Number(params.get("period") ?? 30);
  const digits = Number(params.get("digits") ?? 6);
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / period)));
  const mac = createHmac((params.get("algorithm") ?? "SHA1").toLowerCase(), key).update(counter).digest();
  const offset = mac[mac.length - 1] & 15;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits).padStart(digits, "0");
}

const banks = [];
before(async () => {
  mkdirSync(stick);
  bank = await startBank("bank", POLICY);
  banks.push(bank);
  admin("account", "add", PAYER, "--holder", "Koval Trade LLC", "--balance", "10000.00");
  await startDriver(bank);
});

after(async () => {
  stopDriver();
  for (const b of banks) b.proc.kill();
});

const onboard = (app, login, initial, drive) => onboardWith(app, login, initial, drive, PASSWORD, KEY_PASSWORD);

let initial;

test("onboarding: the first-login wizard makes a key in the folder standing in for the drive", async () => {
  initial = lastLine(admin("user", "add", LOGIN, "--name", "Olena Koval"));
  secrets.push(initial);
  admin("rights", "grant", LOGIN, PAYER, "all");
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    await shot(app, "login");
    await onboard(app, LOGIN, initial, stick);
    // A folder that is not a removable drive gets the fixed-disk warning.
    await shown(app, '[data-test="fixed-disk-warning"]');
    await shot(app, "first-login-drive");
    await click(app, "#wizard-next");
    await click(app, "#wizard-next");
    const done = await shown(app, '[data-test="first-login-done"]');
    assert.match(await done.getText(), /valid until/);
    await shot(app, "first-login-done");
    // The key letter: a PDF an independent reader (pdftotext) finds the shown fingerprint in.
    await click(app, "#key-letter");
    const saved = await shown(app, '[data-test="key-letter-saved"]');
    const letter = (await saved.getText()).replace(/^.*?: /, "").trim();
    const fingerprint = (await (await app.$('[data-test="key-letter-fingerprint"]')).getText()).trim();
    assert.match(fingerprint, /^([0-9A-F]{4} ){15}[0-9A-F]{4}$/);
    const letterText = execFileSync("pdftotext", ["-layout", letter, "-"], { encoding: "utf8" });
    assert.ok(letterText.includes(fingerprint), letterText);
    assert.ok(letterText.includes(LOGIN), letterText);
    const keyDir = join(stick, "Tresor", LOGIN);
    assert.ok(existsSync(join(keyDir, "key-0001.pem")), "the key file is on the drive");
    assert.ok(existsSync(join(keyDir, "cert-0001.pem")), "the certificate is beside it");
    // The key file is standard encrypted PKCS#8, and the certificate verifies against the bank CA.
    assert.match(readFileSync(join(keyDir, "key-0001.pem"), "utf8"), /BEGIN ENCRYPTED PRIVATE KEY/);
    execFileSync("openssl", ["verify", "-CAfile", bank.ca, join(keyDir, "cert-0001.pem")]);
  } finally {
    await app.deleteSession();
  }
});

test("login with the key, an order prepared, signed and sent, then logout", async () => {
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    // Read back from the OS credential store: the last login and the drive are filled in.
    await app.waitUntil(async () => (await (await app.$("#login")).getValue()) === LOGIN, T);
    await app.waitUntil(async () => (await (await app.$("#drive-path")).getValue()) === stick, T);
    await type(app, "#password", PASSWORD);
    await type(app, "#key-password", KEY_PASSWORD);
    await click(app, "#login-submit");
    const accounts = await shown(app, '[data-test="accounts"]');
    await app.waitUntil(async () => (await accounts.getText()).includes("10\u202f000.00 UAH"), T);
    // The 30-day certificate brings the renewal reminder.
    await shown(app, '[data-test="reminder"]');
    await shot(app, "accounts");

    await click(app, "#nav-orders");
    await type(app, "#o-payee-name", "Supplier LLC");
    await type(app, "#o-payee-tax", "32855961");
    await type(app, "#o-payee-iban", PAYEE);
    await type(app, "#o-amount", "1234,50");
    await type(app, "#o-purpose", "Invoice 42, VAT included");
    await click(app, "#o-prepare");
    await shown(app, 'tr[data-status="draft"]');
    await shot(app, "orders");
    await click(app, 'tr[data-status="draft"] [data-action="sign"]');
    const dialog = await shown(app, '[data-test="sign-dialog"]');
    assert.match(await (await app.$('[data-test="sign-amount"]')).getText(), /1234\.50 UAH/);
    assert.equal(await (await app.$('[data-test="sign-payee"]')).getText(), "Supplier LLC");
    const digest = await (await app.$('[data-test="sign-digest"]')).getText();
    assert.match(digest, /\S{4,}/);
    await shot(app, "sign");
    await click(app, "#confirm-sign");
    await dialog.waitForDisplayed({ ...T, reverse: true });
    await click(app, 'tr[data-status="signed"] [data-action="send"]');
    await app.waitUntil(async () => {
      const row = await app.$("tr[data-order]");
      const status = await row.getAttribute("data-status");
      return status === "sent" || status === "accepted";
    }, T);
    // The bank debited the account.
    await click(app, "#nav-accounts");
    const after = await shown(app, '[data-test="accounts"]');
    await app.waitUntil(async () => (await after.getText()).includes("8\u202f765.50 UAH"), T);

    await click(app, "#nav-key");
    await shown(app, '[data-test="key"]');
    await shot(app, "key");
    // Renewal, signed by the current key: a second key beside the first, which stays.
    await type(app, "#renew-password", KEY_PASSWORD);
    await click(app, "#renew-submit");
    await app.waitUntil(async () => (await (await app.$('[data-test="key"]')).getText()).includes("Renewed"), T);
    assert.ok(existsSync(join(stick, "Tresor", LOGIN, "cert-0002.pem")), "the renewed key's certificate");
    assert.ok(existsSync(join(stick, "Tresor", LOGIN, "key-0001.pem")), "the previous key kept");

    await click(app, "#logout");
    await shown(app, '[data-test="logged-out"]');
    // A folder is not a removable drive: no reminder to pull it out.
    assert.equal(await (await app.$('[data-test="pull-drive"]')).isExisting(), false);
  } finally {
    await app.deleteSession();
  }
});

test("a wrong key password leads to the recovery screen, and recovery gives a working key", async () => {
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    await type(app, "#password", PASSWORD);
    await type(app, "#key-password", "not the key password");
    await click(app, "#login-submit");
    const error = await shown(app, '[data-test="error"]');
    assert.equal(await error.getAttribute("data-code"), "wrong_key_password");
    await shot(app, "wrong-key-password");
    await click(app, "#offer-recovery");
    await shown(app, '[data-test="recovery"]');
    await shot(app, "recovery");

    const emergency = lastLine(admin("user", "emergency-password", LOGIN));
    secrets.push(emergency);
    assert.equal(await (await app.$("#rc-login")).getValue(), LOGIN);
    await type(app, "#rc-password", PASSWORD);
    await type(app, "#rc-emergency", emergency);
    await click(app, "#recovery-next");
    await type(app, "#rc-key", NEW_KEY_PASSWORD);
    await type(app, "#rc-key-again", NEW_KEY_PASSWORD);
    await click(app, "#recovery-next");
    await shown(app, '[data-test="recovery-done"]');
    await click(app, "#recovery-to-login");

    await type(app, "#password", PASSWORD);
    await type(app, "#key-password", NEW_KEY_PASSWORD);
    await click(app, "#login-submit");
    await shown(app, '[data-test="accounts"]');

    // One-time codes: enrolled from the QR code's URI, then a login with a code instead of the key.
    await click(app, "#nav-security");
    await click(app, "#totp-start");
    const qr = await shown(app, "img.qr");
    assert.match(await qr.getAttribute("src"), /^data:image\/svg\+xml;base64,/);
    await shot(app, "totp");
    const uri = await (await app.$('[data-test="totp-uri"]')).getProperty("textContent");
    // The QR code the window shows decodes (zbar, an independent decoder) to that URI.
    const src = await qr.getAttribute("src");
    writeFileSync(join(dir, "qr.svg"), Buffer.from(src.split(",")[1], "base64"));
    const qrShot = join(dir, "qr.png");
    execFileSync("rsvg-convert", ["--width", "400", "--background-color", "white", "--output", qrShot, join(dir, "qr.svg")]);
    const decoded = execFileSync("zbarimg", ["--raw", "-q", qrShot], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
    assert.equal(decoded.trim(), uri);
    assert.match(uri, /^otpauth:\/\/totp\/.*secret=[A-Z2-7]+/);
    const enrolledAt = Date.now() / 1000;
    await type(app, "#totp-code", totpCode(uri, enrolledAt));
    await click(app, '[data-test="totp"] button[type="submit"]');
    await app.waitUntil(async () => (await (await app.$('[data-test="totp"]')).getText()).includes("is enrolled"), T);
    await click(app, "#logout");
    await click(app, "#login-again");
    await click(app, "#tab-otp");
    await type(app, "#password", PASSWORD);
    // A code is good once: wait for the next 30-second step.
    const next = (Math.floor(enrolledAt / 30) + 1) * 30;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now() / 1000) * 1000 + 500));
    await type(app, "#otp", totpCode(uri));
    await click(app, "#login-submit");
    const otpAccounts = await shown(app, '[data-test="accounts"]');
    assert.match(await otpAccounts.getText(), /one-time code: you can view and prepare, not sign/);
  } finally {
    await app.deleteSession();
  }
});

test("the app locks itself when idle, as long as the bank's idle timeout if that is shorter", async () => {
  // A second bank whose sessions end after 3 idle seconds: the app's lock follows it.
  const quick = await startBank("quick", "session_idle_seconds = 3\nip_max_points = 1000\n");
  banks.push(quick);
  await startDriver(quick);
  const initial2 = lastLine(quick.admin("user", "add", "petro.idle", "--name", "Petro Idle"));
  secrets.push(initial2);
  const stick2 = join(dir, "stick2");
  mkdirSync(stick2);
  const app = await openApp();
  try {
    await onboard(app, "petro.idle", initial2, stick2);
    await click(app, "#wizard-next");
    await click(app, "#wizard-next");
    await shown(app, '[data-test="first-login-done"]');
    await click(app, "#first-login-to-login");
    await type(app, "#login", "petro.idle");
    await type(app, "#drive-path", stick2);
    await type(app, "#password", PASSWORD);
    await type(app, "#key-password", KEY_PASSWORD);
    await click(app, "#login-submit");
    await shown(app, '[data-test="accounts"]');
    // No input now: the window locks by itself.
    const locked = await shown(app, '[data-test="locked"]');
    assert.match(await locked.getText(), /without activity/);
    await shot(app, "locked");
    await click(app, "#login-again");
    await shown(app, '[data-test="login-screen"]');
  } finally {
    await app.deleteSession();
  }
});

test("the OS credential store holds the login and the drive, and no password", () => {
  const dump = execFileSync("python3", [join(import.meta.dirname, "keyring_dump.py")], { encoding: "utf8" });
  const items = JSON.parse(dump);
  const ours = items.filter((i) => i.attributes.service === "Tresor");
  assert.equal(ours.length, 1, "one entry for the app");
  // The last login and its drive, from the idle-lock test.
  assert.deepEqual(JSON.parse(ours[0].secret), { login: "petro.idle", drive: join(dir, "stick2") });
  for (const item of items) {
    const everything = JSON.stringify(item);
    for (const s of secrets) assert.ok(!everything.includes(s), "no password in the OS credential store");
  }
});
