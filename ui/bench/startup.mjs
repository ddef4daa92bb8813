// The desktop app's start-up time and idle memory, for docs/PERFORMANCE.md.
//
//   xvfb-run -a scripts/with-keyring node ui/bench/startup.mjs [APP] [RUNS]
//
// Each run starts the app (release build by default) through tauri-driver, as the
// end-to-end tests do, and times from the WebDriver "new session" request, which launches the
// process, to the login screen being displayed: an upper bound on start-to-login-screen (it
// includes WebKitWebDriver's own start). After the last run it leaves the app idle on the
// login screen for 10 s and sums the proportional set size (PSS, /proc/PID/smaps_rollup) of
// the app and every process it started (WebKit's web and network processes).
import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { remote } from "webdriverio";

const ROOT = resolve(import.meta.dirname, "../..");
const TARGET = process.env.CARGO_TARGET_DIR ?? resolve(ROOT, "target");
const APP = process.argv[2] ?? resolve(TARGET, "release", "tresor-app");
const RUNS = Number(process.argv[3] ?? 10);

const driver = spawn(process.env.TAURI_DRIVER ?? "tauri-driver", ["--port", "4444"], {
  stdio: "ignore",
  // An unreachable bank: start-up does not touch the network.
  env: { ...process.env, TRESOR_SERVER: "https://127.0.0.1:9", TRESOR_BANK_CA: resolve(ROOT, "icons/tresor.svg") },
});
await new Promise((r) => setTimeout(r, 1000));

/** PSS (shared pages divided among their users) and USS (pages only this process has), KiB. */
const memKiB = (pid) => {
  try {
    const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
    return { pss: field("Pss"), uss: field("Private_Clean") + field("Private_Dirty") };
  } catch {
    return { pss: 0, uss: 0 };
  }
};
const childrenOf = (pid) => {
  try {
    return execFileSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
  } catch {
    return ""; // ps exits 1 when there are none
  }
};
const tree = (pid) => {
  const children = childrenOf(pid)
    .split("\n")
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  return [pid, ...children.flatMap(tree)];
};

const times = [];
let last;
for (let i = 0; i < RUNS; i++) {
  const t0 = performance.now();
  const app = await remote({
    hostname: "127.0.0.1",
    port: 4444,
    logLevel: "error",
    capabilities: { "tauri:options": { application: APP } },
  });
  // The login screen, or the "not configured" variant of it: the first screen either way.
  await app.$("main h1").waitForDisplayed({ timeout: 30_000 });
  times.push(performance.now() - t0);
  if (i < RUNS - 1) await app.deleteSession();
  else last = app;
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)];
console.log(`start to login screen, ${RUNS} runs: median ${median.toFixed(0)} ms, min ${times[0].toFixed(0)} ms, max ${times.at(-1).toFixed(0)} ms`);

await new Promise((r) => setTimeout(r, 10_000));
const pid = Number(execFileSync("pgrep", ["-n", "-f", `^${APP}`], { encoding: "utf8" }).trim());
const procs = tree(pid).map((p) => ({ p, name: readFileSync(`/proc/${p}/comm`, "utf8").trim(), ...memKiB(p) }));
const mib = (k) => (k / 1024).toFixed(1);
for (const x of procs) console.log(`  ${x.name} (${x.p}): ${mib(x.pss)} MiB PSS, ${mib(x.uss)} MiB USS`);
const pss = procs.reduce((s, x) => s + x.pss, 0);
const uss = procs.reduce((s, x) => s + x.uss, 0);
console.log(`idle memory after 10 s on the login screen, ${procs.length} processes: ${mib(pss)} MiB PSS, ${mib(uss)} MiB USS`);
await last.deleteSession();
driver.kill();
