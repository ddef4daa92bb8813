// A user whose key is on a PKCS#11 token (SoftHSM2, its own configuration in a temporary
// folder) in the real app window: the token listed beside the drives, the PIN asked for in
// place of the key password, a login, an order signed on the token and sent, renewal on the
// token. The first login on the token is made with the `tresor` CLI beforehand.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TARGET, T, click, openApp, shot, shown, startBank, startDriver, stopDriver, type } from "./support.mjs";

const SOFTHSM = "/usr/lib/softhsm/libsofthsm2.so";
const LOGIN = "marta.token";
const PASSWORD = "correct horse battery";
const PIN = "246810";
const PAYER = "UA073052992600000000000000002";
const PAYEE = "UA123052992600000000000000009";
const POLICY = "certificate_days = 30\nrenewal_window_days = 30\nip_max_points = 1000\n";

const dir = mkdtempSync(join(tmpdir(), "tresor-token-e2e-"));
const hsmEnv = { SOFTHSM2_CONF: join(dir, "softhsm2.conf"), TRESOR_PKCS11_MODULE: SOFTHSM };
let bank;
let serial;

before(async () => {
  mkdirSync(join(dir, "tokens"));
  writeFileSync(hsmEnv.SOFTHSM2_CONF, `directories.tokendir = ${join(dir, "tokens")}\nobjectstore.backend = file\n`);
  const env = { ...process.env, ...hsmEnv };
  execFileSync("softhsm2-util", ["--init-token", "--free", "--label", "Marta token", "--pin", PIN, "--so-pin", "so-pin-0000"], { env });
  bank = await startBank(dir, "bank", POLICY);
  bank.admin("account", "add", PAYER, "--holder", "Marta Trade LLC", "--balance", "10000.00");
  const initial = bank.admin("user", "add", LOGIN, "--name", "Marta").trim().split("\n").at(-1).trim();
  bank.admin("rights", "grant", LOGIN, PAYER, "all");
  const out = execFileSync(join(TARGET, "debug", "tresor"), ["--json", "first-login", "--login", LOGIN, "--token", "Marta token"], {
    env: {
      ...env,
      TRESOR_SERVER: bank.server,
      TRESOR_BANK_CA: bank.ca,
      TRESOR_CLIENT_CONFIG: join(dir, "cli.toml"),
      TRESOR_PASSWORD: initial,
      TRESOR_NEW_PASSWORD: PASSWORD,
      TRESOR_TOKEN_PIN: PIN,
    },
    encoding: "utf8",
  });
  assert.equal(JSON.parse(out).done, "enrolled");
  serial = JSON.parse(execFileSync(join(TARGET, "debug", "tresor"), ["--json", "media", "list"], { env, encoding: "utf8" })).tokens[0]
    .serial;
  await startDriver(bank, { ...hsmEnv, TRESOR_CLIENT_CONFIG: join(dir, "client.toml") });
});

after(() => {
  stopDriver();
  bank?.proc.kill();
});

test("login with the key on a token: the PIN in place of the key password, an order signed on the token", async () => {
  const app = await openApp();
  try {
    await shown(app, '[data-test="login-screen"]');
    await type(app, "#login", LOGIN);
    // The token is listed beside the drives, marked as holding the login's key.
    const token = await shown(app, '[data-test="token"]');
    await app.waitUntil(async () => (await token.getText()).includes("key found"), T);
    assert.match(await token.getText(), /Marta token/);
    assert.match(await token.getText(), new RegExp(`serial ${serial}`));
    const radio = await app.$(`[data-test="token"] input[value="pkcs11:serial=${serial}"]`);
    await radio.click();
    await app.waitUntil(async () => radio.isSelected(), T);
    // The key-password field asks for the token's PIN.
    const label = await app.$('label[for="key-password"]');
    assert.equal(await label.getText(), "Token PIN");
    await shot(app, "token-login");

    // A wrong PIN: its own error, and recovery offered.
    await type(app, "#password", PASSWORD);
    await type(app, "#key-password", "135790");
    await click(app, "#login-submit");
    const error = await shown(app, '[data-test="error"]');
    assert.equal(await error.getAttribute("data-code"), "wrong_key_password");
    assert.match(await error.getText(), /wrong PIN/);

    await type(app, "#password", PASSWORD);
    await type(app, "#key-password", PIN);
    await click(app, "#login-submit");
    const accounts = await shown(app, '[data-test="accounts"]');
    await app.waitUntil(async () => (await accounts.getText()).includes("10\u202f000.00 UAH"), T);

    await click(app, "#nav-orders");
    await type(app, "#o-payee-name", "Supplier LLC");
    await type(app, "#o-payee-tax", "32855961");
    await type(app, "#o-payee-iban", PAYEE);
    await type(app, "#o-amount", "250,00");
    await type(app, "#o-purpose", "Invoice 7, VAT included");
    await click(app, "#o-prepare");
    await shown(app, 'tr[data-status="draft"]');
    await click(app, 'tr[data-status="draft"] [data-action="sign"]');
    const dialog = await shown(app, '[data-test="sign-dialog"]');
    assert.match(await (await app.$('[data-test="sign-amount"]')).getText(), /250\.00 UAH/);
    await click(app, "#confirm-sign");
    await dialog.waitForDisplayed({ ...T, reverse: true });
    await click(app, 'tr[data-status="signed"] [data-action="send"]');
    await app.waitUntil(async () => {
      const status = await (await app.$("tr[data-order]")).getAttribute("data-status");
      return status === "sent" || status === "accepted";
    }, T);
    await click(app, "#nav-accounts");
    const after = await shown(app, '[data-test="accounts"]');
    await app.waitUntil(async () => (await after.getText()).includes("9\u202f750.00 UAH"), T);

    // Renewal on the token asks for its PIN too, and makes the second generation there.
    await click(app, "#nav-key");
    await shown(app, '[data-test="key"]');
    assert.equal(await (await app.$('label[for="renew-password"]')).getText(), "Token PIN");
    await type(app, "#renew-password", PIN);
    await click(app, "#renew-submit");
    await app.waitUntil(async () => (await (await app.$('[data-test="key"]')).getText()).includes("Renewed"), T);
    const objects = execFileSync("pkcs11-tool", ["--module", SOFTHSM, "--token-label", "Marta token", "--list-objects", "--type", "cert"], {
      env: { ...process.env, ...hsmEnv },
      encoding: "utf8",
    });
    assert.match(objects, new RegExp(`Tresor ${LOGIN} 2`), "the renewed certificate is on the token");
    await click(app, "#logout");
    await shown(app, '[data-test="logged-out"]');
  } finally {
    await app.deleteSession();
  }
});
