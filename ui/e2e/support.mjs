// Shared by the end-to-end tests: a real bank, tauri-driver, the app's window, and the few
// WebDriver steps every test takes.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { remote } from "webdriverio";

const ROOT = resolve(import.meta.dirname, "../..");
export const TARGET = process.env.CARGO_TARGET_DIR ?? join(ROOT, "target");
const APP = join(TARGET, "debug", "tresor-app");
const BANK = join(TARGET, "debug", "tresor-bank");
const DRIVER = process.env.TAURI_DRIVER ?? "tauri-driver";
const SMTP_SCRIPT = join(ROOT, "tests", "smtp_server.py");
const SHOTS = process.env.TRESOR_SCREENSHOTS; // a folder: save a screenshot of each screen

let driver;
// Each test file runs in its own process: a range of ports of its own, so that one file's
// last driver, still closing, never holds the next file's first port.
let port = 4444 + (process.pid % 1000) * 4;

/** A real bank on its own data folder under `dir/name`, with `[policy]` lines and `extra`
 * configuration (TOML sections). */
export async function startBank(dir, name, policy, extra = "") {
  const home = join(dir, name);
  mkdirSync(home);
  writeFileSync(join(home, "bank.toml"), `[policy]\n${policy}\n${extra}`);
  const env = { ...process.env, TRESOR_CONFIG: join(home, "bank.toml"), TRESOR_DATA: join(home, "data"), TRESOR_LOG: "warn" };
  const proc = spawn(BANK, ["serve", "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "inherit"] });
  let server;
  let ca;
  for await (const line of createInterface({ input: proc.stdout })) {
    server ??= line.match(/^Tresor bank server: (.*)$/)?.[1].trim();
    ca ??= line.match(/^Clients trust the bank CA certificate: (.*)$/)?.[1].trim();
    if (server && ca) break;
  }
  assert.ok(server && ca, "the bank started");
  // Admin commands run as local break-glass: a test bank has no two security officers.
  const local = ["audit", "init", "migrate", "ledger", "payments"];
  const admin = (...args) =>
    execFileSync(BANK, local.includes(args[0]) ? args : ["break-glass", "--reason", "test setup", ...args], {
      env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  return { proc, server, ca, admin };
}

/** tauri-driver, which starts each app with TRESOR_SERVER and TRESOR_BANK_CA pointing at `b`,
 * and `env` besides. */
export async function startDriver(b, env = {}) {
  // A fresh pair of ports each time: the previous driver may still hold its own.
  driver?.kill();
  port += 2;
  driver = spawn(DRIVER, ["--port", String(port), "--native-port", String(port + 1)], {
    env: { ...process.env, TRESOR_SERVER: b.server, TRESOR_BANK_CA: b.ca, ...env },
    stdio: ["ignore", "inherit", "inherit"],
  });
  for (let i = 0; i < 100; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/status`);
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("tauri-driver did not start");
}

export function stopDriver() {
  driver?.kill();
}

/** A fresh app process and a WebDriver session on its window. */
export async function openApp() {
  const app = await remote({
    hostname: "127.0.0.1",
    port,
    logLevel: "error",
    capabilities: { "tauri:options": { application: APP } },
  });
  app.setTimeout({ implicit: 0 });
  return app;
}

/** A screenshot of the whole virtual display, taken by the X server (ImageMagick's `import`):
 * WebKitWebDriver's own screenshots do not complete when GPU compositing is off, as the app has it. */
export async function shot(_app, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await new Promise((r) => setTimeout(r, 300)); // let the last click's repaint land
  execFileSync("import", ["-window", "root", "-crop", "1120x760+0+0", join(SHOTS, `${name}.png`)]);
}

export const T = { timeout: 30_000 };
export async function type(app, selector, value) {
  const el = await app.$(selector);
  await el.waitForDisplayed(T);
  await el.clearValue();
  await el.setValue(value);
}
export async function click(app, selector) {
  const el = await app.$(selector);
  await el.waitForClickable(T);
  await el.click();
}
export async function shown(app, selector) {
  const el = await app.$(selector);
  try {
    await el.waitForDisplayed(T);
  } catch (e) {
    // What the window showed instead, for the log.
    const text = await app.$("body").getText().catch(() => "");
    await shot(app, "failure").catch(() => {});
    throw new Error(`${selector} not shown; the window says:\n${text}`, { cause: e });
  }
  return el;
}

/** The first-login wizard, from the login screen to its last step with the key on `drive`
 * (the caller confirms the fixed-disk warning and creates the key). */
export async function onboard(app, login, initial, drive, password, keyPassword) {
  await shown(app, '[data-test="login-screen"]');
  await click(app, "#go-first-login");
  await type(app, "#fl-login", login);
  await type(app, "#fl-initial", initial);
  await click(app, "#wizard-next");
  await type(app, "#fl-new", password);
  await type(app, "#fl-new-again", password);
  await click(app, "#wizard-next");
  await type(app, "#drive-path", drive);
  await type(app, "#fl-key", keyPassword);
  await type(app, "#fl-key-again", keyPassword);
}

/** A real SMTP server on loopback (tests/smtp_server.py, aiosmtpd), plain SMTP as a bank
 * allows on loopback; each mail saved in `out`. */
export async function startSmtp(out) {
  const port = await new Promise((done) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => done(p));
    });
  });
  mkdirSync(out, { recursive: true });
  const proc = spawn("python3", [SMTP_SCRIPT, "serve", out, String(port)], { stdio: ["pipe", "pipe", "inherit"] });
  for await (const line of createInterface({ input: proc.stdout })) if (line.trim() === "ready") break;
  return { proc, port, out };
}

/** The mails `smtp` has taken, oldest first, read by Python's `email` package: to, subject,
 * plain text. */
export function mails(smtp) {
  return readdirSync(smtp.out)
    .filter((f) => f.endsWith(".eml"))
    .sort()
    .map((f) => {
      const [to, subject, text] = JSON.parse(execFileSync("python3", [SMTP_SCRIPT, "read", join(smtp.out, f)], { encoding: "utf8" }));
      return { to, subject, text };
    });
}

/** Waits for a mail to `to` whose subject contains `about`, beyond the first `after`; its
 * one-time code. */
export async function mailedCode(smtp, to, about, after = 0) {
  for (let i = 0; i < 120; i++) {
    const found = mails(smtp)
      .slice(after)
      .find((m) => m.to === to && m.subject.includes(about));
    if (found) return found.text.match(/^(?:Code|Код): (\d+)$/m)[1];
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`no mail to ${to} about ${about}`);
}
