// The price of the mesh, side by side: direct, remora sidecar pairs (mTLS) on Node, Bun and
// Deno, and an HAProxy mTLS pair, all in front of the same 1 KiB upstream app, measured in
// one run with phases interleaved across paths so drift hits every path alike. Writes
// bench/results/<date>-<runtimes>.json and regenerates bench/RESULTS.md (bench/report.ts).
//
//   npm run bench                # full run, ~12 min
//   npm run bench -- --quick     # ~2 min: shorter runs, one step of the max-rate search
//   node bench/run.ts --runtimes node --skip wrk,handshake,retry --no-report
//   npm run bench -- --quick --mesh-h2 bun   # also bun sidecars with mesh_protocol: h2
//   --no-access-log RUNTIMES (default bun): also those runtimes' pairs with access_log: false,
//   as HAProxy's pair runs (paths remora-RUNTIME-nolog); "" for none

import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runChild } from "./load/child.ts";
import type { HandshakeResult, HandshakeSpec, LoadResult, LoadSpec } from "./load/spec.ts";
import { runWrk } from "./load/wrk.ts";
import { startHaproxyPair } from "./paths/haproxy-pair.ts";
import type { PathHandle } from "./paths/path.ts";
import { remoraCommand, startRemoraPair, type RemoraRuntime } from "./paths/remora-pair.ts";
import { startRetryTopology } from "./paths/retry-topology.ts";
import type { BenchResults, BinaryIdle, HandshakeRow, LoadRow, PathInfo, WrkRow } from "./results-schema.ts";
import { measureBinaryIdle } from "./paths/binary-idle.ts";
import { describeMachine } from "./support/machine.ts";
import { startPairBench } from "./support/bench-env.ts";
import { stopAll, stopChildrenOnSignals } from "./support/processes.ts";
import { cpuOf } from "./support/proc-stats.ts";
import { judge, sustained } from "./validity.ts";
import { writeReport } from "./report.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    runtimes: { type: "string", default: "node,bun,deno" },
    "mesh-h2": { type: "string", default: "" },
    "no-access-log": { type: "string", default: "bun" },
    skip: { type: "string", default: "" },
    "no-report": { type: "boolean", default: false },
    "keep-dir": { type: "boolean", default: false },
    /** The runtime of the retry-cost topology; default bun when measured (the fastest), else the first. */
    "retry-runtime": { type: "string" },
  },
});

const QUICK = {
  rates: [100, 1000, 5000],
  fixedMs: { 100: 2000, 1000: 2500, 5000: 2000 } as Record<number, number>,
  warmupMs: 500,
  prewarmMs: 1000,
  maxMs: 2500,
  searchFactors: [0.8],
  searchMs: 2500,
  wrkSeconds: 2,
  handshakes: 300,
  retryRate: 500,
  retryMs: 2500,
};
const FULL = {
  rates: [100, 1000, 5000],
  fixedMs: { 100: 20_000, 1000: 20_000, 5000: 15_000 } as Record<number, number>,
  warmupMs: 3000,
  prewarmMs: 5000,
  maxMs: 10_000,
  searchFactors: [0.9, 0.75, 0.6, 0.45],
  searchMs: 10_000,
  wrkSeconds: 10,
  handshakes: 3000,
  retryRate: 1000,
  retryMs: 15_000,
};
const plan = values.quick ? QUICK : FULL;
const CONNECTIONS = 64;
const HANDSHAKE_CONCURRENCY = 8;
const REQUEST_TIMEOUT_MS = 10_000;
const PATH = "/charge";
const runtimes = values.runtimes.split(",").filter(Boolean) as RemoraRuntime[];
/** Runtimes also measured with `mesh_protocol: h2` between the sidecars (paths remora-RUNTIME-h2). */
const meshH2 = values["mesh-h2"].split(",").filter(Boolean) as RemoraRuntime[];
/** Runtimes also measured with access lines off (paths remora-RUNTIME-nolog), only if measured at all. */
const noAccessLog = values["no-access-log"].split(",").filter((rt) => runtimes.includes(rt as RemoraRuntime)) as RemoraRuntime[];
const skip = new Set(values.skip.split(",").filter(Boolean));

const root = fileURLToPath(new URL("..", import.meta.url));
const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

type RunSpec = Omit<LoadSpec, "target" | "host" | "path" | "connections" | "timeoutMs">;

async function loadRun(path: PathHandle, phase: LoadRow["phase"], spec: RunSpec, label?: string): Promise<LoadRow> {
  const before = path.proxies.map((p) => p.stats());
  const t0 = performance.now();
  const load = await runChild<LoadResult>(
    "generator.ts",
    { ...spec, target: path.entry, host: path.host, path: PATH, connections: CONNECTIONS, timeoutMs: REQUEST_TIMEOUT_MS } satisfies LoadSpec,
    spec.warmupMs + spec.durationMs + REQUEST_TIMEOUT_MS + 60_000,
  );
  const generatorWallMs = performance.now() - t0;
  const after = path.proxies.map((p) => p.stats());
  const proxyCpuSeconds = cpuOf(after) - cpuOf(before);
  const proxyCpuSecondsEach = after.map((a, i) => a.cpuSeconds - before[i]!.cpuSeconds);
  const verdict = judge(load);
  const row: LoadRow = {
    path: path.name,
    phase,
    ...(label ? { label } : {}),
    load,
    verdict,
    proxyCpuSeconds,
    proxyCpuSecondsEach,
    requestsSent: load.sent,
    generatorWallMs,
    cpuPer1000: path.proxies.length > 0 && load.sent > 0 ? (proxyCpuSeconds * 1000) / load.sent : null,
  };
  const l = load.latencyMs;
  log(
    `${path.name.padEnd(12)} ${phase}${label ? `/${label}` : ""} ${load.mode === "open" ? `${load.targetRps} rps` : "closed"}: ` +
      `${Math.round(load.achievedRps)} rps, p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} ms, errors ${load.errors}, ` +
      `gen ${load.generatorCpuCores.toFixed(2)} cores, lag p99 ${load.dispatchLagMs.p99.toFixed(2)} ms` +
      (row.cpuPer1000 !== null ? `, proxy ${row.cpuPer1000.toFixed(3)} cpu-s/1k` : "") +
      (verdict.status !== "ok" ? ` [${verdict.status}: ${verdict.reason}]` : ""),
  );
  await pause(300);
  return row;
}

/**
 * Before anything is measured, each path gets a closed-loop burst on all connections: pools
 * filled (64 client connections, and the mTLS connections behind them), code compiled by
 * the JIT. Otherwise the first measured rate pays every path's start-up, unequally.
 */
async function prewarm(path: PathHandle, extra: Partial<RunSpec> = {}): Promise<void> {
  await runChild<LoadResult>(
    "generator.ts",
    { ...extra, mode: "closed", target: path.entry, host: path.host, path: PATH, connections: CONNECTIONS, timeoutMs: REQUEST_TIMEOUT_MS, warmupMs: 0, durationMs: plan.prewarmMs } satisfies LoadSpec,
    plan.prewarmMs + REQUEST_TIMEOUT_MS + 60_000,
  );
  await pause(500);
}

stopChildrenOnSignals();
const bench = await startPairBench("bench", root);
const { dir } = bench.env;
const paths: PathHandle[] = [];
const loads: LoadRow[] = [];
const wrkRows: WrkRow[] = [];
const handshakes: HandshakeRow[] = [];
const notes: string[] = [];
const machine = describeMachine(root);
const date = new Date().toISOString();
let retryInfo: BenchResults["retry"];
let binary: BinaryIdle | undefined;
const versions: Record<string, string> = {};

try {
  log(`${values.quick ? "quick" : "full"} run, ${machine.cores} x ${machine.cpuModel}, load average ${machine.loadAvgAtStart.toFixed(2)}; files in ${dir}`);
  const { env } = bench;

  // First, on a quiet machine: the compiled binary's idle sidecars (issue 8's memory target).
  if (!skip.has("binary")) binary = await measureBinaryIdle(env, log);
  paths.push({ name: "direct", kind: "direct", entry: env.app, host: "payments", proxies: [], idleRssMiB: [], stop: async () => {} });
  for (const rt of runtimes) {
    const c = remoraCommand(root, rt);
    versions[`remora-${rt}`] = execFileSync(c.command, [...c.args, "version"], { encoding: "utf8" }).trim();
    paths.push(await startRemoraPair(env, rt));
  }
  for (const rt of meshH2) {
    const c = remoraCommand(root, rt);
    versions[`remora-${rt}-h2`] = execFileSync(c.command, [...c.args, "version"], { encoding: "utf8" }).trim();
    paths.push(await startRemoraPair(env, rt, undefined, "h2"));
  }
  for (const rt of noAccessLog) {
    versions[`remora-${rt}-nolog`] = versions[`remora-${rt}`]!;
    paths.push(await startRemoraPair(env, rt, undefined, "http1", false));
  }
  if (!skip.has("haproxy")) paths.push(await startHaproxyPair(env, machine.versions.haproxy ?? "?"));
  // Idle memory once start-up work (JIT, GC) has settled, before any traffic.
  await pause(2000);
  for (const p of paths) p.idleRssMiB = p.proxies.map((x) => x.stats().rssMiB);
  log(`paths: ${paths.map((p) => `${p.name}${p.runtime ? ` (${p.runtime})` : ""}`).join(", ")}`);
  for (const p of paths) await prewarm(p);

  // Fixed rates, interleaved: every path at 100 rps, then every path at 1,000, ...
  for (const rate of plan.rates) {
    for (const p of paths) loads.push(await loadRun(p, "fixed", { mode: "open", rate, warmupMs: plan.warmupMs, durationMs: plan.fixedMs[rate]! }));
  }

  // Maximum throughput (closed loop), then the highest open-loop rate each path sustains.
  const maxOf = new Map<string, number>();
  for (const p of paths) {
    const row = await loadRun(p, "max", { mode: "closed", warmupMs: plan.warmupMs, durationMs: plan.maxMs });
    loads.push(row);
    maxOf.set(p.name, row.load.achievedRps);
  }
  if (!skip.has("sustained")) {
    // Direct is the reference for latency, not a path whose rate matters (and at its rate
    // the generator shares the two cores with the app).
    for (const p of paths.filter((x) => x.kind !== "direct")) {
      for (const f of plan.searchFactors) {
        const rate = Math.max(100, Math.round((maxOf.get(p.name)! * f) / 100) * 100);
        const row = await loadRun(p, "sustained", { mode: "open", rate, warmupMs: plan.warmupMs, durationMs: plan.searchMs });
        loads.push(row);
        if (sustained(row.load, row.verdict)) break;
      }
    }
  }

  if (!skip.has("wrk")) {
    for (const p of paths) {
      const wrk = await runWrk({ entry: p.entry, host: p.host, path: PATH, connections: CONNECTIONS, seconds: plan.wrkSeconds });
      wrkRows.push({ path: p.name, wrk, harnessMaxRps: maxOf.get(p.name) ?? null });
      log(`${p.name.padEnd(12)} wrk: ${Math.round(wrk.rps)} rps (harness max ${Math.round(maxOf.get(p.name) ?? 0)}), errors ${wrk.errors}`);
      await pause(300);
    }
  }

  if (!skip.has("handshake")) {
    for (const p of paths) {
      if (!p.tlsServer) continue;
      const before = p.tlsServer.process.stats().cpuSeconds;
      const result = await runChild<HandshakeResult>(
        "handshake.ts",
        { target: p.tlsServer.address, count: plan.handshakes, concurrency: HANDSHAKE_CONCURRENCY, cert: join(env.certs, "orders.pem"), key: join(env.certs, "orders-key.pem"), ca: join(env.certs, "root.pem") } satisfies HandshakeSpec,
        300_000,
      );
      const serverCpuSeconds = p.tlsServer.process.stats().cpuSeconds - before;
      handshakes.push({ path: p.name, result, serverCpuSeconds, perCoreSec: serverCpuSeconds > 0 ? result.ok / serverCpuSeconds : NaN });
      log(`${p.name.padEnd(12)} handshakes: ${result.ok}/${result.count} at ${Math.round(result.handshakesPerSec)}/s, ${Math.round(result.ok / serverCpuSeconds)} per server core-second, p50 ${result.timeMs.p50.toFixed(2)} ms, ${result.protocol}`);
      await pause(300);
    }
  }

  if (!skip.has("retry")) {
    const rt = (values["retry-runtime"] as RemoraRuntime | undefined) ?? (runtimes.includes("bun") ? "bun" : runtimes[0] ?? "node");
    const topo = await startRetryTopology(env, rt);
    retryInfo = { runtime: topo.path.runtime ?? rt, policy: topo.policy, flapping: topo.flapping };
    // POST with a body, as in the reference scenario: a GET that fails on a reused
    // connection is replayed once by the B1 sidecar's own upstream (safe for idempotent
    // requests), which would hide most resets from the retry policy under test.
    const charge = { method: "POST", body: JSON.stringify({ order: "o-1234", amount_cents: 4200, currency: "EUR" }) };
    await prewarm(topo.path, charge);
    for (const label of ["healthy", "flapping"] as const) {
      if (label === "flapping") await topo.setFlapping(true);
      for (const spec of [
        { ...charge, mode: "open" as const, rate: plan.retryRate, warmupMs: plan.warmupMs, durationMs: plan.retryMs },
        { ...charge, mode: "closed" as const, warmupMs: plan.warmupMs, durationMs: plan.maxMs },
      ]) {
        const r0 = await topo.retries();
        const row = await loadRun(topo.path, "retry", spec, label);
        row.retries = (await topo.retries()) - r0;
        loads.push(row);
      }
    }
    await topo.stop();
  }
} finally {
  const finalStats = new Map(paths.map((p) => [p.name, p.proxies.map((x) => { try { return x.stats().peakRssMiB; } catch { return NaN; } })]));
  await bench.close({ keep: values["keep-dir"] });
  await stopAll();
  const pathInfo: PathInfo[] = paths.map((p) => ({
    name: p.name,
    kind: p.kind,
    ...(p.runtime ? { runtime: p.runtime } : {}),
    ...(p.adapter ? { adapter: p.adapter } : {}),
    ...(versions[p.name] ? { version: versions[p.name] } : {}),
    proxies: p.proxies.map((x) => x.name),
    idleRssMiB: p.idleRssMiB,
    peakRssMiB: finalStats.get(p.name) ?? [],
  }));
  if (loads.length > 0) {
    const results: BenchResults = {
      date,
      mode: values.quick ? "quick" : "full",
      machine,
      settings: { ...plan, connections: CONNECTIONS, requestTimeoutMs: REQUEST_TIMEOUT_MS, handshakeConcurrency: HANDSHAKE_CONCURRENCY, path: PATH, runtimes, skip: [...skip], adapterEnv: process.env.REMORA_RUNTIME_ADAPTER ?? null },
      paths: pathInfo,
      loads,
      wrk: wrkRows,
      handshakes,
      ...(retryInfo ? { retry: retryInfo } : {}),
      ...(binary ? { binary } : {}),
      notes,
    };
    const adapter = process.env.REMORA_RUNTIME_ADAPTER ? `-${process.env.REMORA_RUNTIME_ADAPTER}-adapter` : "";
    const file = join(root, "bench/results", `${date.slice(0, 10)}-${runtimes.join("-")}${meshH2.length ? `-h2-${meshH2.join("-")}` : ""}${adapter}${values.quick ? "-quick" : ""}.json`);
    await writeFile(file, JSON.stringify(results, null, 1) + "\n");
    log(`wrote ${file}`);
    if (!values["no-report"]) log(`wrote ${await writeReport(file)}`);
  }
}
