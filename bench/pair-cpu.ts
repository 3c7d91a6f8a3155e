// CPU per request of each sidecar of a remora pair, user and system time apart: the number
// an optimization of the hot path has to move. Each source copy given with --root runs as
// a pair in front of the bench's upstream app, under wrk (closed loop, the pair saturated)
// or, with --rate, the harness's open-loop generator; copies alternate round by round, in
// reverse order every other round, so drift and position on a shared machine hit all alike
// (use an even --rounds).
//
//   node bench/pair-cpu.ts [--runtime bun|node|deno] [--rate 1500] [--seconds 8] [--rounds 3] [--root DIR ...]

import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runChild } from "./load/child.ts";
import type { LoadResult, LoadSpec } from "./load/spec.ts";
import { startRemoraPair, type RemoraRuntime } from "./paths/remora-pair.ts";
import { startPairBench } from "./support/bench-env.ts";
import { stopAll, stopChildrenOnSignals } from "./support/processes.ts";

const { values } = parseArgs({
  options: {
    runtime: { type: "string", default: "bun" },
    rate: { type: "string" },
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "1" },
    root: { type: "string", multiple: true },
  },
});
const benchRoot = fileURLToPath(new URL("..", import.meta.url));
const roots = values.root ?? [benchRoot];
const runtime = values.runtime as RemoraRuntime;
const seconds = Number(values.seconds);

/** User and system CPU seconds of a process (USER_HZ 100). */
function cpu(pid: number): { user: number; sys: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return { user: Number(f[11]) / 100, sys: Number(f[12]) / 100 };
}

function wrk(entry: string, host: string, secs: number): Promise<number> {
  return new Promise((resolve, reject) =>
    execFile("wrk", ["-t1", "-c64", `-d${secs}s`, "-H", `Host: ${host}`, `http://${entry}/charge`], (err, out) => {
      if (err) return reject(err);
      resolve(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN) * secs);
    }),
  );
}

async function measure(root: string): Promise<string> {
  const bench = await startPairBench("pair-cpu", root);
  try {
    const pair = await startRemoraPair(bench.env, runtime);
    await wrk(pair.entry, pair.host, 2); // warm: JIT, pools
    const before = pair.proxies.map((p) => cpu(p.pid));
    let requests: number;
    let extra = "";
    if (values.rate) {
      const spec: LoadSpec = { target: pair.entry, host: pair.host, path: "/charge", connections: 64, timeoutMs: 10_000, mode: "open", rate: Number(values.rate), warmupMs: 500, durationMs: seconds * 1000 };
      const r = await runChild<LoadResult>("generator.ts", spec, 120_000);
      requests = r.sent;
      extra = `, p50 ${r.latencyMs.p50.toFixed(2)} p99 ${r.latencyMs.p99.toFixed(2)} ms, errors ${r.errors}`;
    } else {
      requests = await wrk(pair.entry, pair.host, seconds);
    }
    const after = pair.proxies.map((p) => cpu(p.pid));
    const us = (i: number, k: "user" | "sys") => Math.round(((after[i]![k] - before[i]![k]) * 1e6) / requests);
    await pair.stop();
    const rps = Math.round(requests / seconds);
    return `${rps} rps${extra}; orders user ${us(0, "user")} sys ${us(0, "sys")} µs/req, payments user ${us(1, "user")} sys ${us(1, "sys")} µs/req`;
  } finally {
    await bench.close();
  }
}

stopChildrenOnSignals();
try {
  for (let round = 1; round <= Number(values.rounds); round++) {
    // Every other round in reverse: the copy measured second in a round came out ~4% dearer
    // whichever it was (RESULTS.md, session 7), so each copy takes both positions.
    const order = round % 2 === 1 ? roots : [...roots].reverse();
    for (const root of order) console.log(`${runtime} ${values.rate ? `${values.rate} rps open loop` : "wrk -c64"} ${root}: ${await measure(root)}`);
  }
} finally {
  await stopAll();
}
