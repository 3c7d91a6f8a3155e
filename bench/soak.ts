// Soak: a steady request rate through a sidecar pair (orders -> payments) while the control
// plane rotates certificates and a policy changes on a timer; zero failed requests, RSS and
// file descriptors flat after warm-up. Prints a table, writes bench/results/<date>-soak.json.
//
//   node bench/soak.ts [--minutes 30] [--cert-ttl 4m] [--policy-every 60s] [--rate 50] [--out FILE]
//
// Certificates renew at half-life, so --cert-ttl 4m rotates every ~2 minutes. Runs shorter
// than 10 minutes default to --cert-ttl 1m and --policy-every 30s, so a 3-minute run (CI)
// still sees several rotations and policy changes.

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { parseDuration } from "../src/core/duration.ts";
import { freePort, startProcess, stopAll, stopChildrenOnSignals, type BenchProcess } from "./support/processes.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const REMORA = join(ROOT, "bin", "remora.js");
const { values } = parseArgs({ options: {
  minutes: { type: "string", default: "30" },
  "cert-ttl": { type: "string" },
  "policy-every": { type: "string" },
  rate: { type: "string", default: "50" },
  out: { type: "string" },
} });
const minutes = Number(values.minutes);
const short = minutes < 10;
const certTtl = values["cert-ttl"] ?? (short ? "1m" : "4m");
const policyEveryMs = parseDuration(values["policy-every"] ?? (short ? "30s" : "60s"));
const rate = Number(values.rate);
const durationMs = minutes * 60_000;
/**
 * Warm-up: JIT, pools and V8's heap sizing settle (measured: RSS climbs for ~90 s at 50 req/s,
 * then stays flat); RSS is compared from here to the end.
 */
const warmupMs = Math.min(5 * 60_000, durationMs / 2);
const SAMPLE_MS = 5_000;
/** Growth beyond either bound is a leak, not noise; both sides are medians of 3 samples (GC timing). */
const RSS_GROWTH_PCT = 15;
const RSS_GROWTH_MIB = 20;
const FD_GROWTH = 5;

if (!(minutes > 0) || !(rate > 0)) throw new Error("soak: --minutes and --rate must be positive numbers");
stopChildrenOnSignals();

const dir = mkdtempSync(join(tmpdir(), "remora-soak-"));
const data = join(dir, "cp");
const remora = (args: string[]) => execFileSync(process.execPath, [REMORA, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

interface Sample { atS: number; name: string; rssMiB: number; fds: number }
const samples: Sample[] = [];
let ok = 0;
const failures: string[] = [];
let policyChanges = 0;

try {
  // The app: a plain HTTP server in this process.
  const app = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.end("charged"));
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const appAddress = `127.0.0.1:${(app.address() as AddressInfo).port}`;

  const controlPort = await freePort();
  const control = await startProcess({
    name: "control", command: process.execPath, logFile: join(dir, "control.log"),
    args: [REMORA, "control", "--data", data, "--listen", `127.0.0.1:${controlPort}`, "--cert-ttl", certTtl],
    ready: { line: (r) => r.msg === "control plane ready" },
  });
  const url = `https://127.0.0.1:${controlPort}`;
  const policy = (retries: number) => `route:\n  destination: payments\n  retry_policy:\n    retry_on: connect-failure,reset,5xx\n    num_retries: ${retries}\n    per_try_timeout: 2s\n  tls:\n    mode: ISTIO_MUTUAL\n`;
  const applyPolicy = (retries: number) => {
    const file = join(dir, "payments.yaml");
    writeFileSync(file, policy(retries));
    remora(["apply", "-f", file, "--control", url, "--data", data]);
  };
  applyPolicy(2);
  const sidecar = (service: string, extra: string[]) => startProcess({
    name: service, command: process.execPath, logFile: join(dir, `${service}.log`),
    args: [REMORA, "proxy", "--control", url, "--ca", join(data, "root.pem"), "--token", remora(["token", "--service", service, "--control", url, "--data", data]),
      "--service", service, "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", ...extra],
    ready: { line: (r) => r.msg === "sidecar ready" },
  });
  const payments = await sidecar("payments", ["--app", appAddress, "--inbound", "127.0.0.1:0"]);
  const orders = await sidecar("orders", ["--destinations", "payments"]);
  const outbound = orders.readyLine!.outbound as string;
  const watched: BenchProcess[] = [orders, payments, control];

  // Wait for orders to know the payments endpoint.
  for (let i = 0; ; i++) {
    const r = await fetch(`http://${orders.readyLine!.admin as string}/endpoints`).then((x) => x.text()).catch(() => "");
    if (r.includes(payments.readyLine!.inbound as string)) break;
    if (i > 200) throw new Error("orders never learned the payments endpoint");
    await new Promise((r) => setTimeout(r, 50));
  }

  const start = Date.now();
  const elapsed = () => (Date.now() - start) / 1000;
  const sample = () => {
    for (const p of watched) {
      const s = p.stats();
      samples.push({ atS: Math.round(elapsed()), name: p.name, rssMiB: Math.round(s.rssMiB * 10) / 10, fds: readdirSync(`/proc/${p.pid}/fd`).length });
    }
  };
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  let retries = 2;
  const policyTimer = setInterval(() => {
    retries = retries === 2 ? 1 : 2;
    try {
      applyPolicy(retries);
      policyChanges++;
    } catch (e) {
      failures.push(`policy change failed: ${(e as Error).message}`);
    }
  }, policyEveryMs);

  // Open-loop steady rate, through keep-alive connections (what an app does); the app names
  // the service in Host, as `POST http://payments/charge` would.
  const agent = new Agent({ keepAlive: true, maxSockets: 8 });
  const [host, port] = [outbound.slice(0, outbound.lastIndexOf(":")), Number(outbound.slice(outbound.lastIndexOf(":") + 1))];
  const post = () => new Promise<{ status: number; body: string }>((done, fail) => {
    const req = request({ host, port, agent, method: "POST", path: "/charge", headers: { host: "payments", "content-type": "application/json" } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => done({ status: res.statusCode ?? 0, body }));
      res.on("error", fail);
    });
    req.setTimeout(15_000, () => req.destroy(new Error("no answer within 15 s")));
    req.on("error", fail);
    req.end("{}");
  });
  let inFlight = 0;
  const fire = async () => {
    inFlight++;
    try {
      const res = await post();
      if (res.status === 200) ok++;
      else failures.push(`${elapsed().toFixed(1)}s: ${res.status} ${res.body.trim()}`);
    } catch (e) {
      failures.push(`${elapsed().toFixed(1)}s: ${(e as Error).message}`);
    } finally {
      inFlight--;
    }
  };
  const interval = 1000 / rate;
  let next = Date.now();
  while (Date.now() - start < durationMs) {
    if (inFlight < 200) void fire();
    else failures.push(`${elapsed().toFixed(1)}s: over 200 requests in flight; the sidecar pair stopped keeping up`);
    next += interval;
    await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
  }
  while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
  clearInterval(sampler);
  clearInterval(policyTimer);
  sample();
  agent.destroy();
  app.close();

  const rotations = Object.fromEntries([orders, payments].map((p) =>
    [p.name, readFileSync(p.logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"certificate loaded"')).length]));
  const verdicts = watched.map((p) => {
    const mine = samples.filter((s) => s.name === p.name);
    const at = Math.max(0, mine.findIndex((s) => s.atS >= warmupMs / 1000));
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const warm = { rssMiB: median(mine.slice(at, at + 3).map((s) => s.rssMiB)), fds: median(mine.slice(at, at + 3).map((s) => s.fds)) };
    const end = { rssMiB: median(mine.slice(-3).map((s) => s.rssMiB)), fds: median(mine.slice(-3).map((s) => s.fds)) };
    const growth = end.rssMiB - warm.rssMiB;
    const leak = growth > RSS_GROWTH_MIB || growth > (warm.rssMiB * RSS_GROWTH_PCT) / 100;
    const fdLeak = end.fds > warm.fds + FD_GROWTH;
    return { name: p.name, warmRssMiB: warm.rssMiB, endRssMiB: end.rssMiB, maxRssMiB: Math.max(...mine.map((s) => s.rssMiB)), warmFds: warm.fds, endFds: end.fds, rssFlat: !leak, fdsFlat: !fdLeak };
  });
  const pass = failures.length === 0 && verdicts.every((v) => v.rssFlat && v.fdsFlat) && Object.values(rotations).every((n) => n >= 2) && policyChanges >= 2;

  console.log(`soak: ${minutes} min at ${rate} req/s, cert ttl ${certTtl}, policy change every ${policyEveryMs / 1000}s`);
  console.log(`requests ok ${ok}, failed ${failures.length}; policy changes ${policyChanges}; certificate rotations ${JSON.stringify(rotations)}`);
  console.log("process    warm RSS  end RSS  max RSS  warm fds  end fds  verdict");
  for (const v of verdicts) {
    console.log(`${v.name.padEnd(10)} ${v.warmRssMiB.toFixed(1).padStart(8)} ${v.endRssMiB.toFixed(1).padStart(8)} ${v.maxRssMiB.toFixed(1).padStart(8)} ${String(v.warmFds).padStart(9)} ${String(v.endFds).padStart(8)}  ${v.rssFlat && v.fdsFlat ? "flat" : "GROWING"}`);
  }
  for (const f of failures.slice(0, 10)) console.log(`failure: ${f}`);
  const out = values.out ?? join(ROOT, "bench", "results", `${new Date().toISOString().slice(0, 10)}-soak.json`);
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify({
    kind: "soak", date: new Date().toISOString(), runtime: `node ${process.versions.node}`,
    settings: { minutes, rate, certTtl, policyEveryS: policyEveryMs / 1000, warmupS: warmupMs / 1000, rssGrowthPct: RSS_GROWTH_PCT, rssGrowthMiB: RSS_GROWTH_MIB, fdGrowth: FD_GROWTH },
    requests: { ok, failed: failures.length, failures: failures.slice(0, 100) },
    policyChanges, rotations, processes: verdicts, samples, pass,
  }, null, 2) + "\n");
  console.log(`${pass ? "PASS" : "FAIL"}; results in ${out}`);
  process.exitCode = pass ? 0 : 1;
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
