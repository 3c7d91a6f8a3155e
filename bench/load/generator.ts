// The load generator, run as its own process so its CPU is measured apart from the
// proxies: open loop at a fixed rate (latency from each request's intended send time, so
// a stall is charged to every request it delays: no coordinated omission) or closed loop
// (every connection sends back to back: maximum throughput). Prints one JSON result.
//
//   node bench/load/generator.ts '{"target":"127.0.0.1:8080","host":"payments","mode":"open","rate":1000,...}'

import { Worker } from "node:worker_threads";
import { build } from "hdr-histogram-js";
import { HttpConnection, requestBytes, type Completion } from "./http-connection.ts";
import type { LoadResult, LoadSpec } from "./spec.ts";

const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;
/** The ticker never wakes more often than this (4,000 wake-ups per second). */
const MIN_PERIOD_MS = 0.25;
/** Histograms in microseconds, 1 µs to 60 s at 3 significant digits. */
const newHistogram = () => build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });

const latency = newHistogram();
const dispatchLag = newHistogram();
const statuses: Record<string, number> = {};
const errors: Record<string, number> = {};
let completed = 0;
let measuredCompleted = 0;
/** 2xx responses that arrived inside the measured window: the achieved rate. */
let windowOk = 0;
let sent = 0;

const request = requestBytes(spec.host, spec.path, spec.method, spec.body);
const connections = Array.from({ length: spec.connections }, () => new HttpConnection(spec.target, request));
const idle: HttpConnection[] = [...connections];
/** Intended send times (ms, performance.now) waiting for a free connection. */
const queue: number[] = [];
let queueHead = 0;
const deadlines = new Map<HttpConnection, number>();

const t0 = performance.now();
const measureFrom = t0 + spec.warmupMs;
const stopAt = measureFrom + spec.durationMs;
const cpu0 = process.cpuUsage();
let cpuMeasure0: NodeJS.CpuUsage | undefined;

function record(intended: number, c: Completion): void {
  const now = performance.now();
  completed++;
  if (intended < measureFrom || intended >= stopAt) {
    if (c.error === undefined && c.status >= 200 && c.status <= 299 && now >= measureFrom && now < stopAt) windowOk++;
    return;
  }
  measuredCompleted++;
  if (c.error !== undefined) {
    errors[c.error] = (errors[c.error] ?? 0) + 1;
    return;
  }
  statuses[c.status] = (statuses[c.status] ?? 0) + 1;
  if (c.status < 200 || c.status > 299) errors[`status ${c.status}`] = (errors[`status ${c.status}`] ?? 0) + 1;
  latency.recordValue(Math.max(1, Math.round((now - intended) * 1000)));
  if (c.status >= 200 && c.status <= 299 && now < stopAt) windowOk++;
}

function dispatch(conn: HttpConnection, intended: number): void {
  sent++;
  deadlines.set(conn, performance.now() + spec.timeoutMs);
  conn.send((c) => {
    deadlines.delete(conn);
    record(intended, c);
    next(conn);
  });
}

/** A connection became free: the queue first (open loop), or send again at once (closed loop). */
function next(conn: HttpConnection): void {
  const now = performance.now();
  if (spec.mode === "closed") {
    if (now < stopAt) dispatch(conn, now);
    else idle.push(conn);
    return;
  }
  // After the window nothing queued is sent: a saturated path would otherwise keep the run
  // going until its backlog drained. What is left counts as unsent.
  if (queueHead < queue.length && now < stopAt) dispatch(conn, queue[queueHead++]!);
  else idle.push(conn);
  if (queueHead > 4096 && queueHead * 2 > queue.length) queue.splice(0, queueHead), (queueHead = 0);
}

function expire(now: number): void {
  for (const [conn, at] of deadlines) if (now > at) conn.abort("timeout");
}

// Request i is intended at t0 + i / rate. A ticker thread wakes this loop at each intended
// time (or every 0.25 ms above 4,000 rps, releasing small bursts); latency counts from the
// intended time, and how late the loop actually released a request is dispatch lag.
async function openLoop(): Promise<void> {
  const intervalMs = 1000 / spec.rate!;
  const last = Math.ceil((stopAt - t0) / intervalMs);
  let scheduled = 0;
  const ticker = new Worker(new URL("./ticker.ts", import.meta.url), {
    workerData: { startEpochMs: performance.timeOrigin + t0, periodMs: Math.max(MIN_PERIOD_MS, intervalMs) },
  });
  await new Promise<void>((done) => {
    const release = () => {
      const now = performance.now();
      if (cpuMeasure0 === undefined && now >= measureFrom) cpuMeasure0 = process.cpuUsage();
      if (now >= stopAt) return done();
      const due = Math.min(Math.floor((now - t0) / intervalMs) + 1, last);
      for (; scheduled < due; scheduled++) {
        const intended = t0 + scheduled * intervalMs;
        if (intended >= measureFrom) dispatchLag.recordValue(Math.max(1, Math.round((now - intended) * 1000)));
        const conn = idle.pop();
        if (conn) dispatch(conn, intended);
        else queue.push(intended);
      }
      expire(now);
    };
    ticker.on("message", release);
    // A backstop in case the ticker thread stalls: the run still ends on time.
    const backstop = setInterval(release, 10);
    release();
    void new Promise<void>((r) => setTimeout(r, stopAt - performance.now() + 20)).then(() => clearInterval(backstop));
  });
  await ticker.terminate();
}

async function closedLoop(): Promise<void> {
  for (const conn of idle.splice(0)) dispatch(conn, performance.now());
  while (performance.now() < stopAt) {
    if (cpuMeasure0 === undefined && performance.now() >= measureFrom) cpuMeasure0 = process.cpuUsage();
    expire(performance.now());
    await new Promise((r) => setTimeout(r, 10));
  }
}

if (spec.mode === "open") await openLoop();
else await closedLoop();
const cpuMeasured = process.cpuUsage(cpuMeasure0 ?? cpu0);
const measuredWallMs = spec.durationMs;

// Let in-flight requests finish (bounded by their timeout), then count what never got sent.
const drainUntil = performance.now() + spec.timeoutMs;
while (deadlines.size > 0 && performance.now() < drainUntil) {
  expire(performance.now());
  await new Promise((r) => setTimeout(r, 5));
}
// Requests of the window still waiting for a connection when it closed: not errors (the
// achieved rate already shows them), but reported.
let unsent = 0;
for (let i = queueHead; i < queue.length; i++) if (queue[i]! >= measureFrom) unsent++;
for (const c of connections) c.close();

const pct = (q: number) => latency.getValueAtPercentile(q) / 1000;
const cpuSeconds = (cpuMeasured.user + cpuMeasured.system) / 1e6;
const errorCount = Object.values(errors).reduce((a, b) => a + b, 0);
const ok = latency.totalCount;
const result: LoadResult = {
  mode: spec.mode,
  ...(spec.rate !== undefined ? { targetRps: spec.rate } : {}),
  durationMs: measuredWallMs,
  connections: spec.connections,
  sent,
  completed: measuredCompleted,
  ok,
  achievedRps: (windowOk * 1000) / measuredWallMs,
  errors: errorCount,
  errorKinds: errors,
  statuses,
  unsent,
  latencyMs: { p50: pct(50), p90: pct(90), p99: pct(99), p999: pct(99.9), max: latency.maxValue / 1000, mean: latency.mean / 1000 },
  dispatchLagMs: { p50: dispatchLag.getValueAtPercentile(50) / 1000, p99: dispatchLag.getValueAtPercentile(99) / 1000, max: dispatchLag.maxValue / 1000 },
  generatorCpuCores: cpuSeconds / (measuredWallMs / 1000),
  reconnects: connections.reduce((a, c) => a + Math.max(0, c.opened - 1), 0),
};
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
