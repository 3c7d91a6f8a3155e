// Where a Bun sidecar pair's CPU goes, layer by layer, beside HAProxy in the same run: the
// same two hops (plain in, mTLS between the proxies, plain to the app) carried by
//   relay         bytes relayed with nothing parsed (Bun's sockets and TLS: the floor),
//   runtime-only  remora's Bun HTTP/1.1 listener and pooled mTLS upstream, forwarding only,
//   remora        a full sidecar pair (`remora proxy`: pipeline, metrics, logs, trace headers),
//   haproxy       the HAProxy mTLS pair of `npm run bench`.
// Each layer is saturated by wrk (closed loop, 64 connections), or with --rate driven by the
// harness's open-loop generator at that rate (where issue 8's CPU target is judged), and its
// proxies' user+system CPU is divided by the requests served; layers alternate round by
// round so drift on a shared machine hits all alike. The minimum over rounds is reported.
// With --perf each proxy is also sampled by Linux perf while it is measured, and its CPU per
// request is split into kernel, native user code and compiled JavaScript (support/perf-split.ts).
//
//   node bench/layers.ts [--seconds 8] [--rounds 3] [--rate 1000] [--only relay,runtime-only,remora,haproxy] [--perf] [--out FILE]

import { mkdtemp, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runChild } from "./load/child.ts";
import type { LoadResult, LoadSpec } from "./load/spec.ts";
import { runWrk } from "./load/wrk.ts";
import type { BenchEnv, PathHandle } from "./paths/path.ts";
import { startHaproxyPair } from "./paths/haproxy-pair.ts";
import { startRemoraPair } from "./paths/remora-pair.ts";
import { startPairBench } from "./support/bench-env.ts";
import { recordPerf, type CpuSplit } from "./support/perf-split.ts";
import { freePort, startProcess, stopAll, stopChildrenOnSignals, type BenchProcess } from "./support/processes.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
    rate: { type: "string" },
    only: { type: "string", default: "relay,runtime-only,remora,haproxy" },
    out: { type: "string" },
    perf: { type: "boolean", default: false },
  },
});
const root = fileURLToPath(new URL("..", import.meta.url));
const bun = join(root, "node_modules/.bin/bun");
const seconds = Number(values.seconds);
const rate = values.rate === undefined ? undefined : Number(values.rate);
const layers = values.only.split(",");

/** Requests wrk completed in `secs` (closed loop, 64 connections); a run with errors is refused. */
async function wrk(entry: string, host: string, secs: number): Promise<number> {
  const r = await runWrk({ entry, host, path: "/charge", connections: 64, seconds: secs });
  if (r.errors > 0 || !Number.isFinite(r.rps)) throw new Error(`wrk saw ${r.errors} errors:\n${r.raw}`);
  return r.rps * secs;
}

/** Requests sent at `rate` for `secs` (open loop, 64 connections); a run with errors or short of its rate is refused. */
async function openLoop(entry: string, host: string, secs: number, rps: number): Promise<number> {
  // No warm-up window: wrk warmed the path, and every request sent is one the proxies' CPU paid for.
  const spec: LoadSpec = { target: entry, host, path: "/charge", connections: 64, timeoutMs: 10_000, mode: "open", rate: rps, warmupMs: 0, durationMs: secs * 1000 };
  const r = await runChild<LoadResult>("generator.ts", spec, secs * 1000 + 60_000);
  if (r.errors > 0 || r.achievedRps < rps * 0.95) throw new Error(`open loop at ${rps} rps: ${r.errors} errors, ${Math.round(r.achievedRps)} rps achieved`);
  return r.sent;
}

/** A client-side and a server-side process of one of the Bun layers (relay or runtime-only). */
async function startBunLayer(env: BenchEnv, layer: "relay" | "runtime-only"): Promise<PathHandle> {
  const [clientPort, serverPort] = [await freePort(), await freePort()];
  const script = join(root, "bench/layers", `${layer}.ts`);
  const listen = (port: number) => (layer === "relay" ? String(port) : `127.0.0.1:${port}`);
  const start = (role: string, port: number, target: string): Promise<BenchProcess> =>
    startProcess({ name: `${layer}-${role}`, command: bun, args: [script, role, listen(port), target, env.certs], logFile: join(env.dir, `${layer}-${role}.log`), ready: { connect: `127.0.0.1:${port}` } });
  const server = await start("server", serverPort, env.app);
  const client = await start("client", clientPort, `127.0.0.1:${serverPort}`);
  return { name: layer, kind: "remora", entry: `127.0.0.1:${clientPort}`, host: "payments", proxies: [client, server], idleRssMiB: [], stop: async () => void (await Promise.all([client.stop(), server.stop()])) };
}

interface Row {
  layer: string;
  rps: number;
  clientUs: number;
  serverUs: number;
  /** With --perf: where each proxy's CPU went (client, server). */
  split?: [CpuSplit, CpuSplit];
}

async function measure(shared: BenchEnv, layer: string): Promise<Row> {
  // A folder per measurement: the sidecars' logs are appended to, and a ready line left by
  // an earlier round would be taken for this one's.
  const env = { ...shared, dir: await mkdtemp(join(shared.dir, `${layer}-`)) };
  const path =
    layer === "remora" ? await startRemoraPair(env, "bun")
    : layer === "haproxy" ? await startHaproxyPair(env, "")
    : await startBunLayer(env, layer as "relay" | "runtime-only");
  try {
    await wrk(path.entry, path.host, 2); // JIT, pools, TLS sessions
    const recordings = values.perf ? path.proxies.map((p) => recordPerf(p.pid, join(env.dir, `${p.name}.perf`))) : undefined;
    const before = path.proxies.map((p) => p.stats().cpuSeconds);
    const requests = rate === undefined ? await wrk(path.entry, path.host, seconds) : await openLoop(path.entry, path.host, seconds, rate);
    const us = path.proxies.map((p, i) => ((p.stats().cpuSeconds - before[i]!) * 1e6) / requests);
    const row: Row = { layer, rps: requests / seconds, clientUs: us[0]!, serverUs: us[1]! };
    if (recordings) row.split = (await Promise.all(recordings.map((r) => r.stop()))) as [CpuSplit, CpuSplit];
    return row;
  } finally {
    await path.stop();
  }
}

/** µs per request of each proxy in kernel, native user code and compiled JavaScript, from its perf samples. */
function splitTable(rows: Row[]): string {
  const cells = (us: number, s: CpuSplit) => `${(us * s.kernel).toFixed(0)} | ${(us * s.native).toFixed(0)} | ${(us * s.jit).toFixed(0)} | ${(s.otherThreads * 100).toFixed(0)}%`;
  return [
    "| layer | proxy | µs/req | kernel | native user code | compiled JS | off the main thread |",
    "|---|---|---|---|---|---|---|",
    ...rows.flatMap((r) =>
      r.split === undefined ? [] : [
        `| ${r.layer} | client | ${r.clientUs.toFixed(0)} | ${cells(r.clientUs, r.split[0])} |`,
        `| ${r.layer} | server | ${r.serverUs.toFixed(0)} | ${cells(r.serverUs, r.split[1])} |`,
      ]),
  ].join("\n");
}

stopChildrenOnSignals();
const bench = await startPairBench("layers", root);
try {
  const env = bench.env;
  const rows: Row[] = [];
  for (let round = 1; round <= Number(values.rounds); round++) {
    for (const layer of layers) {
      const row = await measure(env, layer);
      rows.push(row);
      console.log(`round ${round} ${layer}: ${Math.round(row.rps)} rps; client ${row.clientUs.toFixed(1)} µs, server ${row.serverUs.toFixed(1)} µs CPU per request`);
    }
  }
  // The least disturbed round of each layer: noise on a shared machine only ever adds CPU.
  const best = layers.map((layer) => rows.filter((r) => r.layer === layer).reduce((a, b) => (a.clientUs + a.serverUs <= b.clientUs + b.serverUs ? a : b)));
  const table = [
    `| layer | rps (${rate === undefined ? "wrk -c64" : "open loop"}) | client proxy µs/req | server proxy µs/req | pair µs/req |`,
    "|---|---|---|---|---|",
    ...best.map((r) => `| ${r.layer} | ${Math.round(r.rps)} | ${r.clientUs.toFixed(1)} | ${r.serverUs.toFixed(1)} | ${(r.clientUs + r.serverUs).toFixed(1)} |`),
  ].join("\n");
  console.log(`\n${table}`);
  if (values.perf) console.log(`\n${splitTable(best)}`);
  if (values.out) await writeFile(values.out, JSON.stringify({ date: new Date().toISOString(), seconds, ...(rate === undefined ? {} : { rate }), rounds: Number(values.rounds), rows }, null, 2) + "\n");
} finally {
  await bench.close();
  await stopAll();
}
