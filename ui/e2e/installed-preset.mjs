// The bank's own installer, installed for real (scripts/test-client-package runs this after
// `dpkg -i`): the packaged app, started with no settings of the user's and nothing in the
// environment naming a bank, opens on the login screen of the bank its preset names, whose
// name and helpdesk it shows, with no Settings step.
//
// Needs: DISPLAY, tauri-driver, TRESOR_APP (the installed app), BANK_NAME and BANK_PHONE.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { remote } from "webdriverio";

const APP = process.env.TRESOR_APP ?? "/usr/bin/tresor-app";
const home = mkdtempSync(join(tmpdir(), "tresor-installed-"));
const port = 4444 + (process.pid % 1000) * 4;
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: join(home, "config") };
for (const v of ["TRESOR_SERVER", "TRESOR_BANK_CA", "TRESOR_CLIENT_CONFIG"]) delete env[v];
const driver = spawn(process.env.TAURI_DRIVER ?? "tauri-driver", ["--port", String(port), "--native-port", String(port + 1)], {
  env,
  stdio: ["ignore", "inherit", "inherit"],
});
after(() => driver.kill());

test("the installed app starts at the login screen of the preset's bank", async () => {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/status`)).ok) break;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const app = await remote({
    hostname: "127.0.0.1",
    port,
    logLevel: "error",
    capabilities: { "tauri:options": { application: APP } },
  });
  try {
    const T = { timeout: 30_000 };
    const login = await app.$('[data-test="login-screen"]');
    await login.waitForDisplayed(T);
    const footer = await app.$('[data-test="bank-info"]');
    await footer.waitForDisplayed(T);
    await app.waitUntil(async () => (await footer.getText()).includes(process.env.BANK_PHONE), {
      ...T,
      timeoutMsg: "the bank's helpdesk on the login screen",
    });
    assert.ok((await footer.getText()).includes(process.env.BANK_NAME));
    // The first login is one click away: no Settings step in between.
    await (await app.$("#go-first-login")).click();
    await (await app.$('[data-test="first-login"]')).waitForDisplayed(T);
  } finally {
    await app.deleteSession();
  }
});
