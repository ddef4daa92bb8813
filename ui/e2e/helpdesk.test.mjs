// The bank's voice before login, in the real app window: the bank's name and helpdesk at the
// lower left of the login screen in both languages, named again where a message sends the
// user to the bank (here an address blocked after wrong logins), and still there from the
// settings file's cache when the bank cannot be reached.
//
// Needs what app.test.mjs needs.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { T, openApp, shot, shown, startBank, startDriver, stopDriver, type } from "./support.mjs";

const dir = mkdtempSync(join(tmpdir(), "tresor-helpdesk-e2e-"));
const settings = join(dir, "client.toml");
const HELPDESK = {
  name: "Банк Приклад",
  phone: "+380 44 000 00 00",
  email: "help@bank.example",
  hours: "Пн–Пт 9:00–18:00",
  website: "https://bank.example",
};
// One wrong login blocks the address: the quickest way to a message that sends the user to
// the bank without a key.
const POLICY = "ip_max_points = 1\n";
const BANK_SECTION = `[bank]\n${Object.entries(HELPDESK)
  .map(([k, v]) => `${k} = "${v}"`)
  .join("\n")}\n`;
let bank;

before(async () => {
  bank = await startBank(dir, "bank", POLICY, BANK_SECTION);
  // The bank's address in the settings file, as `tresor setup` or the Settings screen saves
  // it: what the helpdesk cache belongs to.
  writeFileSync(settings, `server = "${bank.server}"\nbank_ca = "${bank.ca}"\n`);
  await startDriver(bank, { TRESOR_CLIENT_CONFIG: settings });
});

after(() => {
  stopDriver();
  bank?.proc.kill();
});

/** Clicks `selector` once it has stopped moving: the login screen grows as the drive list,
 * the remembered login and the bank's helpdesk arrive, and a click aimed at where a link was
 * a moment ago lands on nothing. */
async function clickSettled(app, selector) {
  const el = await app.$(selector);
  await el.waitForClickable(T);
  let last = JSON.stringify(await el.getLocation());
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 150));
    const now = JSON.stringify(await el.getLocation());
    if (now === last) break;
    last = now;
  }
  await el.click();
}

/** Chooses the window's language in Settings and comes back to the login screen. */
async function setLang(app, lang) {
  await clickSettled(app, "#go-settings");
  await (await shown(app, "#lang")).selectByAttribute("value", lang);
  await clickSettled(app, "#settings-back");
  await shown(app, '[data-test="login-screen"]');
}

async function footer(app) {
  const el = await shown(app, '[data-test="bank-info"]');
  await app.waitUntil(async () => (await el.getText()).includes(HELPDESK.phone), {
    ...T,
    timeoutMsg: "the helpdesk's number on the login screen",
  });
  return el.getText();
}

test("the login screen names the bank and its helpdesk, in both languages and offline", async () => {
  let app = await openApp();
  try {
    await setLang(app, "en");
    const en = await footer(app);
    for (const v of Object.values(HELPDESK)) assert.ok(en.includes(v), `${v} in: ${en}`);
    assert.match(en, /Helpdesk: \+380 44 000 00 00/);
    // Lower left of the login screen: below the form and its links, at the card's left edge.
    const box = await (await app.$('[data-test="bank-info"]')).getLocation();
    const card = await (await app.$('[data-test="login-screen"]')).getLocation();
    const links = await (await app.$("#go-settings")).getLocation();
    assert.ok(box.y > links.y && box.x - card.x < 40, `at the lower left: ${JSON.stringify({ box, card, links })}`);

    // A blocked address: the refusal names the helpdesk.
    await clickSettled(app, "#tab-otp");
    for (let i = 0; i < 3; i++) {
      await type(app, "#login", "olena.koval");
      await type(app, "#password", `wrong password ${i}`);
      await type(app, "#otp", "000000");
      await clickSettled(app, "#login-submit");
      await (await app.$('[data-test="error"]')).waitForDisplayed(T);
      const code = await (await app.$('[data-test="error"]')).getAttribute("data-code");
      if (code === "locked") break;
    }
    const error = await shown(app, '[data-test="error"][data-code="locked"]');
    const hint = await (await error.$('[data-test="helpdesk-hint"]')).getText();
    assert.match(hint, /Call the helpdesk of Банк Приклад: \+380 44 000 00 00/);
    await shot(app, "login-helpdesk");

    await setLang(app, "uk");
    const uk = await footer(app);
    assert.match(uk, /Служба підтримки: \+380 44 000 00 00/);
    assert.match(uk, /Години роботи: Пн–Пт 9:00–18:00/);
  } finally {
    await app.deleteSession();
  }
  // The app cached what the bank said in the settings file.
  assert.ok(readFileSync(settings, "utf8").includes(HELPDESK.phone), "cached in client.toml");

  // The bank down: a new window still names the helpdesk, from the cache.
  bank.proc.kill();
  await new Promise((r) => bank.proc.once("exit", r));
  app = await openApp();
  try {
    const uk = await footer(app);
    assert.match(uk, /Банк Приклад/);
    assert.match(uk, /Служба підтримки: \+380 44 000 00 00/);
    // The language is kept by the window: leave it as the other tests expect it.
    await setLang(app, "en");
  } finally {
    await app.deleteSession();
  }
});
