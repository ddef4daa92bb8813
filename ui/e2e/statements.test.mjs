// Statements and the signature queue in the real app window: orders imported from a file in
// the app (a file with a bad line imports nothing and names the line) wait in the queue and
// are signed in one go after one summary; the Statements screen shows the period's balances
// and every movement, renders only what is on screen of 10,000 rows, and exports files that
// independent readers take (1C by the `client_bank_1c` Python library, camt.053 by xmllint
// against the official XSD, the PDF by pdftotext, the CSV by Node's own reading).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { T, TARGET, click, openApp, shot, shown, startBank, startDriver, stopDriver, type } from "./support.mjs";

const LOGIN = "marko.buh";
const PASSWORD = "correct horse battery";
const KEY_PASSWORD = "stick key password";
const ACCOUNT = "UA073052992600000000000000002";
const PAYEE = "UA123052992600000000000000009";

const dir = mkdtempSync(join(tmpdir(), "tresor-statements-e2e-"));
const drive = join(dir, "stick");
const exports = join(dir, "exports");
let bank;

function cli(args, env = {}) {
  return execFileSync(join(TARGET, "debug", "tresor"), ["--json", ...args], {
    env: {
      ...process.env,
      TRESOR_SERVER: bank.server,
      TRESOR_BANK_CA: bank.ca,
      TRESOR_CLIENT_CONFIG: join(dir, "cli.toml"),
      TRESOR_LOGIN: LOGIN,
      TRESOR_DRIVE: drive,
      TRESOR_PASSWORD: PASSWORD,
      TRESOR_KEY_PASSWORD: KEY_PASSWORD,
      ...env,
    },
    encoding: "utf8",
  });
}

before(async () => {
  mkdirSync(drive);
  mkdirSync(exports);
  bank = await startBank(dir, "bank", "ip_max_points = 1000\n");
  bank.admin("account", "add", ACCOUNT, "--holder", "ТОВ Марко Трейд", "--balance", "5000.00");
  const initial = bank.admin("user", "add", LOGIN, "--name", "Marko Buh").trim().split("\n").at(-1).trim();
  bank.admin("rights", "grant", LOGIN, ACCOUNT, "all");
  cli(["first-login"], { TRESOR_PASSWORD: initial, TRESOR_NEW_PASSWORD: PASSWORD });
  await startDriver(bank, { TRESOR_CLIENT_CONFIG: join(dir, "client.toml"), TRESOR_EXPORT_DIR: exports });
});

after(() => {
  stopDriver();
  bank?.proc.kill();
});

async function login(app) {
  await shown(app, '[data-test="login-screen"]');
  await type(app, "#login", LOGIN);
  await type(app, "#drive-path", drive);
  await type(app, "#password", PASSWORD);
  await type(app, "#key-password", KEY_PASSWORD);
  await click(app, "#login-submit");
  await shown(app, '[data-test="accounts"]');
}

const HEADER = "number,date,payer_iban,payee_name,payee_tax_code,payee_iban,amount,purpose\n";
const GOOD =
  `31,2026-11-30,${ACCOUNT},ТОВ Постачальник,32855961,${PAYEE},1200.50,Оплата за рахунком 5\n` +
  `32,2026-11-30,${ACCOUNT},ФОП Іваненко,32855961,${PAYEE},300.00,Оплата послуг\n`;

test("import, the queue signed in one go, then the statement shows and exports the movements", async () => {
  const app = await openApp();
  try {
    await login(app);
    // Orders from the accounting program: a file with a bad line imports nothing.
    const bad = join(dir, "bad.csv");
    writeFileSync(bad, HEADER + GOOD + `33,2026-11-30,${ACCOUNT},Bad,32855961,${PAYEE},-5,Negative\n`);
    const good = join(dir, "orders.csv");
    writeFileSync(good, HEADER + GOOD);
    await click(app, "#nav-orders");
    await type(app, "#imp-path", bad);
    await click(app, "#imp-run");
    const problems = await shown(app, '[data-test="import-problems"]');
    assert.match(await problems.getText(), /Line 4, amount/);
    assert.match(await (await app.$('[data-test="import-report"]')).getText(), /Nothing was imported/);
    await type(app, "#imp-path", good);
    await click(app, "#imp-run");
    await app.waitUntil(async () => (await (await app.$('[data-test="import-report"]')).getText()).includes("2 drafts prepared"), T);
    await shot(app, "import");

    // The form keeps a payee in the account's directory and a template, and fills itself
    // from them.
    await type(app, "#o-payee-name", "ТОВ Оренда");
    await type(app, "#o-payee-tax", "32855961");
    await type(app, "#o-payee-iban", PAYEE);
    await type(app, "#o-amount", "99.00");
    await type(app, "#o-purpose", "Оренда за грудень");
    await click(app, "#o-save-payee");
    await app.waitUntil(async () => (await (await app.$(".notice")).getText()).includes("ТОВ Оренда"), T);
    await type(app, "#o-template-name", "Оренда щомісяця");
    await click(app, "#o-save-template");
    await app.waitUntil(async () => (await (await app.$(".notice")).getText()).includes("Оренда щомісяця"), T);
    for (const id of ["#o-payee-name", "#o-payee-tax", "#o-payee-iban", "#o-amount", "#o-purpose"]) await type(app, id, " ");
    await (await shown(app, "#o-counterparty")).selectByVisibleText(`ТОВ Оренда · ${PAYEE.replace(/(.{4})/g, "$1 ").trim()}`);
    await app.waitUntil(async () => (await (await app.$("#o-payee-name")).getValue()) === "ТОВ Оренда", T);
    assert.equal(await (await app.$("#o-purpose")).getValue(), "Оренда за грудень");
    await (await shown(app, "#o-template")).selectByVisibleText("Оренда щомісяця");
    await app.waitUntil(async () => (await (await app.$("#o-amount")).getValue()) === "99.00", T);
    assert.equal(await (await app.$("#o-payee-iban")).getValue(), PAYEE);
    assert.equal(JSON.parse(cli(["template", "list"]))[0].content.name, "Оренда щомісяця");

    await click(app, "#nav-queue");
    await shown(app, '[data-test="queue-list"]');
    assert.equal((await app.$$("[data-queued]")).length, 2);
    await click(app, "#queue-all");
    await click(app, "#queue-sign");
    const dialog = await shown(app, '[data-test="batch-dialog"]');
    assert.match(await dialog.getText(), /1500\.50 UAH/);
    const digest = await (await app.$('[data-test="batch-digest"]')).getText();
    assert.match(digest, /^[0-9A-F]{4}(-[0-9A-F]{4}){3}$/);
    await shot(app, "queue-batch");
    await click(app, "#confirm-batch");
    await app.waitUntil(async () => (await (await app.$('[data-test="queue"]')).getText()).includes("2 of 2"), T);
    assert.equal((await app.$$("[data-queued]")).length, 0, "the queue is empty");

    // Sent with the CLI; a payment arrives from another bank.
    for (const o of JSON.parse(cli(["order", "list"]))) cli(["order", "send", String(o.id)]);
    bank.admin(
      "payments", "incoming", "--account", ACCOUNT, "--amount", "250.00", "--payer-name", "ТОВ Покупець",
      "--payer-iban", "UA903052992990004149123456789", "--payer-tax-code", "32855961",
      "--purpose", "Оплата за рахунком 7", "--number", "55",
    );

    await click(app, "#nav-statements");
    await click(app, '[data-preset="thisMonth"]');
    await click(app, "#st-show");
    const closing = await shown(app, '[data-test="st-closing"]');
    // 5000.00 − 1200.50 − 300.00 + 250.00.
    await app.waitUntil(async () => (await closing.getText()).includes("3\u202f749.50"), T);
    assert.match(await (await app.$('[data-test="st-debits"]')).getText(), /1\u202f500\.50/);
    assert.equal((await app.$$("[data-movement]")).length, 4);
    await shot(app, "statement");

    // Exports, each read back by a reader that is not ours.
    await click(app, '[data-export="1c"]');
    const notice = await shown(app, ".notice");
    await app.waitUntil(async () => (await notice.getText()).includes(exports), T);
    const onec = join(exports, `statement-${ACCOUNT}-${(await (await app.$("#st-from")).getValue())}-${(await (await app.$("#st-to")).getValue())}.txt`);
    assert.ok(existsSync(onec), onec);
    const read = execFileSync(
      "python3",
      ["-c", "import sys, client_bank_1c; s = client_bank_1c.load(open(sys.argv[1], 'rb').read()); print(s.accounts[0]['КонечныйОстаток'], len(s.documents))", onec],
      { encoding: "utf8" },
    );
    assert.equal(read.trim(), "3749.50 4");
    const exported = async (format, ext) => {
      await click(app, `[data-export="${format}"]`);
      const file = onec.replace(/\.txt$/, `.${ext}`);
      await app.waitUntil(async () => (await (await app.$(".notice")).getText()).includes(file), T);
      return file;
    };
    const camt = await exported("camt053", "xml");
    execFileSync("xmllint", ["--noout", "--schema", join(import.meta.dirname, "../../tests/vectors/iso20022/camt.053.001.08.xsd"), camt]);
    const csv = readFileSync(await exported("csv", "csv"), "utf8").trim().split("\r\n");
    assert.equal(csv.length, 5, "a header and four movements");
    assert.ok(csv[0].startsWith("booked,value_date,document,debit,credit"), csv[0]);
    const pdf = await exported("pdf", "pdf");
    const text = execFileSync("pdftotext", ["-layout", pdf, "-"], { encoding: "utf8" });
    assert.ok(text.includes("3749.50") && text.includes("ТОВ Постачальник"), text);
    assert.ok(readFileSync(pdf).subarray(0, 5).toString() === "%PDF-");
  } finally {
    await app.deleteSession();
  }
});

test("a statement of 10,000 movements renders only the rows on screen", async () => {
  const rows = ["account,amount,currency,payer_name,payer_iban,payer_tax_code,purpose,number"];
  for (let i = 0; i < 10_000; i++) rows.push(`${ACCOUNT},1.00,UAH,ТОВ Покупець,UA903052992990004149123456789,32855961,Платіж ${i},${i}`);
  const file = join(dir, "incoming.csv");
  writeFileSync(file, rows.join("\n") + "\n");
  bank.admin("payments", "incoming", "--file", file);
  const app = await openApp();
  try {
    await login(app);
    await click(app, "#nav-statements");
    await click(app, '[data-preset="thisMonth"]');
    await click(app, "#st-show");
    const table = await shown(app, '[data-test="statement-rows"]');
    await app.waitUntil(async () => Number(await table.getAttribute("data-count")) > 10_000, T);
    const rendered = (await app.$$("[data-movement]")).length;
    assert.ok(rendered > 0 && rendered < 100, `${rendered} rows in the DOM`);
    assert.equal(await app.execute(() => document.querySelector('td[title="Платіж 0"]') !== null), true, "the first rows are");
    // Scrolled to the end, the last movement is there and the first is not.
    await app.execute(() => {
      const el = document.querySelector('[data-test="statement-rows"]');
      el.scrollTop = el.scrollHeight;
      el.dispatchEvent(new Event("scroll"));
    });
    await shot(app, "statement-10000");
    // A row in the DOM, found by its purpose (each purpose cell carries it as its title).
    const inDom = (purpose) =>
      app.execute((p) => document.querySelector(`[data-test="statement-rows"] td[title="${p}"]`) !== null, purpose);
    await app.waitUntil(() => inDom("Платіж 9999"), T);
    assert.equal(await inDom("Платіж 0"), false, "the first rows are no longer rendered");
    assert.ok((await app.$$("[data-movement]")).length < 100);
  } finally {
    await app.deleteSession();
  }
});

test("a session the bank ends is handled on the statements screen as on every screen", async () => {
  const app = await openApp();
  try {
    await login(app);
    await click(app, "#nav-statements");
    await shown(app, "#st-show");
    // The bank ends every session of the user (a change of menus does, as any change of
    // rights): the next request from this screen meets the ended session.
    bank.admin("user", "menus", LOGIN, "full");
    await click(app, '[data-preset="today"]');
    await click(app, "#st-show");
    const ended = await shown(app, '[data-test="session-ended"]');
    assert.match(await ended.getText(), /The bank has ended the session/);
    // And the way back is the login screen.
    await click(app, "#login-again");
    await shown(app, '[data-test="login-screen"]');
  } finally {
    await app.deleteSession();
  }
});
