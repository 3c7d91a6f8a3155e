// Soak: a steady request rate through a sidecar pair (orders -> payments) while the control
// plane rotates certificates and a policy changes on a timer; zero failed requests, live heap
// and file descriptors flat after warm-up, RSS under a ceiling (bench/support/soak-verdict.ts
// says why RSS alone cannot be judged). Prints a table, writes bench/results/<date>-soak.json.
//
//   node bench/soak.ts [--minutes 30] [--cert-ttl 4m] [--policy-every 60s] [--rate 50] [--rss-ceiling 512]
//                      [--runtime node|bun|deno] [--out FILE]
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
import { get as httpsGet } from "node:https";
import { parseDuration } from "../src/core/duration.ts";
import { GC_ON_SCRAPE_ENV } from "../src/runtime/process-memory.ts";
import { DEFAULT_RETENTION_MS } from "../src/control/stats/collector.ts";
import { DEFAULT_LIMITS, judgeProcess, type SoakSample, type VerdictLimits } from "./support/soak-verdict.ts";
import { freePort, startProcess, stopAll, stopChildrenOnSignals, type BenchProcess } from "./support/processes.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const REMORA = join(ROOT, "bin", "remora.js");
const { values } = parseArgs({ options: {
  minutes: { type: "string", default: "30" },
  "cert-ttl": { type: "string" },
  "policy-every": { type: "string" },
  rate: { type: "string", default: "50" },
  "rss-ceiling": { type: "string", default: String(DEFAULT_LIMITS.rssCeilingMiB) },
  /** What runs the control plane and sidecars; the bench itself stays on Node (it reads /proc). */
  runtime: { type: "string", default: "node" },
  out: { type: "string" },
} });
const minutes = Number(values.minutes);
const short = minutes < 10;
const certTtl = values["cert-ttl"] ?? (short ? "1m" : "4m");
const policyEveryMs = parseDuration(values["policy-every"] ?? (short ? "30s" : "60s"));
const rate = Number(values.rate);
const durationMs = minutes * 60_000;
/** Warm-up: JIT, pools and V8's heap sizing settle; memory and fds are judged from here to the end. */
const warmupMs = Math.min(5 * 60_000, durationMs / 2);
const SAMPLE_MS = 5_000;
/** Every other sample also reads the live heap; each reading costs the process a full GC. */
const HEAP_EVERY = 2;
const limits: VerdictLimits = { ...DEFAULT_LIMITS, warmupS: warmupMs / 1000, rssCeilingMiB: Number(values["rss-ceiling"]) };
/**
 * The control plane keeps every proxy's scrapes for DEFAULT_RETENTION_MS (remora stat's
 * history): its live heap grows by design until that fills (measured: +0.6 MiB/min for two
 * proxies), so it is judged from then on, or over the run's last quarter in a shorter run.
 */
const controlLimits: VerdictLimits = { ...limits, warmupS: Math.max(warmupMs, Math.min(DEFAULT_RETENTION_MS + 60_000, durationMs * 0.75)) / 1000 };
/**
 * TEST-ONLY, for this bench's own children: a full GC before each /metrics reading, so
 * remora_heap_used_bytes is the live heap (src/runtime/process-memory.ts).
 */
const childEnv = { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ""} --expose-gc`.trim(), [GC_ON_SCRAPE_ENV]: "1" };
const runtimes: Record<string, { command: string; args: string[] }> = {
  node: { command: process.execPath, args: [] },
  bun: { command: join(ROOT, "node_modules", ".bin", "bun"), args: [] },
  deno: { command: join(ROOT, "node_modules", ".bin", "deno"), args: ["run", "-A", "--v8-flags=--expose-gc"] },
};
const childRuntime = runtimes[values.runtime];

if (!(minutes > 0) || !(rate > 0) || !(limits.rssCeilingMiB > 0)) throw new Error("soak: --minutes, --rate and --rss-ceiling must be positive numbers");
if (!childRuntime) throw new Error(`soak: --runtime ${values.runtime} is not one of ${Object.keys(runtimes).join(", ")}`);
stopChildrenOnSignals();

const dir = mkdtempSync(join(tmpdir(), "remora-soak-"));
const data = join(dir, "cp");
const remora = (args: string[]) => execFileSync(process.execPath, [REMORA, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();

interface Sample extends SoakSample { name: string }
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
    name: "control", command: childRuntime.command, logFile: join(dir, "control.log"), env: childEnv,
    args: [...childRuntime.args, REMORA, "control", "--data", data, "--listen", `127.0.0.1:${controlPort}`, "--cert-ttl", certTtl],
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
    name: service, command: childRuntime.command, logFile: join(dir, `${service}.log`), env: childEnv,
    args: [...childRuntime.args, REMORA, "proxy", "--control", url, "--ca", join(data, "root.pem"), "--token", remora(["token", "--service", service, "--control", url, "--data", data]),
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
  const rootPem = readFileSync(join(data, "root.pem"), "utf8");
  const metricsUrl = (p: BenchProcess) => p === control ? `${url}/metrics` : `http://${p.readyLine!.admin as string}/metrics`;
  let ticks = 0;
  const sample = async () => {
    const withHeap = ticks++ % HEAP_EVERY === 0;
    await Promise.all(watched.map(async (p) => {
      const heapMiB = withHeap ? await liveHeapMiB(metricsUrl(p), rootPem) : undefined;
      const s = p.stats();
      samples.push({ atS: Math.round(elapsed()), name: p.name, rssMiB: Math.round(s.rssMiB * 10) / 10, fds: readdirSync(`/proc/${p.pid}/fd`).length, ...(heapMiB === undefined ? {} : { heapMiB }) });
    }));
  };
  await sample();
  const sampler = setInterval(() => void sample(), SAMPLE_MS);
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
  await sample();
  agent.destroy();
  app.close();

  const rotations = Object.fromEntries([orders, payments].map((p) =>
    [p.name, readFileSync(p.logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"certificate loaded"')).length]));
  const verdicts = watched.map((p) => judgeProcess(p.name, samples.filter((s) => s.name === p.name).sort((a, b) => a.atS - b.atS), p === control ? controlLimits : limits));
  const pass = failures.length === 0 && verdicts.every((v) => v.rssFlat && v.fdsFlat) && Object.values(rotations).every((n) => n >= 2) && policyChanges >= 2;

  console.log(`soak: ${minutes} min at ${rate} req/s, cert ttl ${certTtl}, policy change every ${policyEveryMs / 1000}s`);
  console.log(`requests ok ${ok}, failed ${failures.length}; policy changes ${policyChanges}; certificate rotations ${JSON.stringify(rotations)}`);
  console.log(`memory judged by the live heap after a full GC (MiB, fitted trend after ${limits.warmupS} s of warm-up, ${controlLimits.warmupS} s for the control plane); RSS must stay under ${limits.rssCeilingMiB} MiB`);
  console.log("process    warm RSS  end RSS  max RSS  warm heap  end heap  trend  warm fds  end fds  verdict");
  const mib = (n: number | undefined, width: number) => (n === undefined ? "-" : n.toFixed(1)).padStart(width);
  for (const v of verdicts) {
    console.log(`${v.name.padEnd(10)} ${mib(v.warmRssMiB, 8)} ${mib(v.endRssMiB, 8)} ${mib(v.maxRssMiB, 8)} ${mib(v.warmHeapMiB, 10)} ${mib(v.endHeapMiB, 9)} ${((v.trendMiB >= 0 ? "+" : "") + v.trendMiB.toFixed(1)).padStart(6)}${v.judgedBy === "rss" ? "r" : " "} ${String(v.warmFds).padStart(8)} ${String(v.endFds).padStart(8)}  ${v.rssFlat && v.fdsFlat ? "flat" : "GROWING"}`);
  }
  for (const v of verdicts) for (const r of v.reasons) console.log(`${v.name}: ${r}`);
  for (const f of failures.slice(0, 10)) console.log(`failure: ${f}`);
  const out = values.out ?? join(ROOT, "bench", "results", `${new Date().toISOString().slice(0, 10)}-soak.json`);
  mkdirSync(join(out, ".."), { recursive: true });
  writeFileSync(out, JSON.stringify({
    kind: "soak", date: new Date().toISOString(), runtime: values.runtime === "node" ? `node ${process.versions.node}` : values.runtime,
    settings: { minutes, rate, certTtl, policyEveryS: policyEveryMs / 1000, ...limits, controlWarmupS: controlLimits.warmupS },
    requests: { ok, failed: failures.length, failures: failures.slice(0, 100) },
    policyChanges, rotations, processes: verdicts, samples, pass,
  }, null, 2) + "\n");
  console.log(`${pass ? "PASS" : "FAIL"}; results in ${out}`);
  process.exitCode = pass ? 0 : 1;
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

/** remora_heap_used_bytes from a /metrics page, in MiB; undefined when the scrape fails. */
async function liveHeapMiB(url: string, caPem: string): Promise<number | undefined> {
  try {
    const text = url.startsWith("https:")
      ? await new Promise<string>((ok, fail) => {
        httpsGet(url, { ca: caPem, timeout: 5_000 }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => ok(body));
        }).on("error", fail).on("timeout", function (this: { destroy(e: Error): void }) { this.destroy(new Error("timeout")); });
      })
      : await fetch(url, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text());
    const m = /^remora_heap_used_bytes (\S+)$/m.exec(text);
    const bytes = Number(m?.[1]);
    return Number.isFinite(bytes) ? Math.round((bytes / 2 ** 20) * 10) / 10 : undefined;
  } catch {
    return undefined;
  }
}
