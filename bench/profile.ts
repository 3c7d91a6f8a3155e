// Where a remora sidecar pair spends its CPU: both sidecars run under `node --cpu-prof`,
// take open-loop load at a fixed rate, and the profiles are summed by function (self
// time) and by source file. Also reports idle CPU (no traffic) and CPU per 1,000 requests,
// the numbers an optimization has to move.
//
//   node bench/profile.ts [--runtime node|bun] [--rate 1000] [--seconds 10] [--top 30] [--no-prof]

import { mkdir, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runChild } from "./load/child.ts";
import type { LoadResult, LoadSpec } from "./load/spec.ts";
import { startRemoraPair } from "./paths/remora-pair.ts";
import { startPairBench } from "./support/bench-env.ts";
import { stopAll, stopChildrenOnSignals } from "./support/processes.ts";
import { cpuOf } from "./support/proc-stats.ts";

const { values } = parseArgs({
  options: {
    rate: { type: "string", default: "1000" },
    /** node or bun: both write Chrome .cpuprofile files with --cpu-prof. */
    runtime: { type: "string", default: "node" },
    seconds: { type: "string", default: "10" },
    top: { type: "string", default: "30" },
    "no-prof": { type: "boolean", default: false },
    "idle-seconds": { type: "string", default: "5" },
    /** Run the sidecars from another copy of the sources (before/after comparisons). */
    root: { type: "string" },
  },
});
const root = values.root ?? fileURLToPath(new URL("..", import.meta.url));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** Self time per function and per file, and inclusive time per function, in ms, summed over profiles. */
function summarize(profiles: CpuProfile[]): { byFunction: Map<string, number>; byFile: Map<string, number>; inclusive: Map<string, number>; totalMs: number } {
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let totalMs = 0;
  for (const p of profiles) {
    const nodes = new Map(p.nodes.map((n) => [n.id, n]));
    const selfUs = new Map<number, number>();
    p.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    for (const [id, us] of selfUs) {
      const n = nodes.get(id)!;
      const { functionName, url, lineNumber } = n.callFrame;
      if (functionName === "(idle)") continue;
      const file = url.replace(`file://${root}`, "").replace(/^node:/, "node:") || `(${functionName || "native"})`;
      const key = `${functionName || "(anonymous)"}  ${file}${url ? `:${lineNumber + 1}` : ""}`;
      byFunction.set(key, (byFunction.get(key) ?? 0) + us / 1000);
      byFile.set(file, (byFile.get(file) ?? 0) + us / 1000);
      totalMs += us / 1000;
    }
    // Inclusive: a node's self time plus its subtree's, counted once per function on a path
    // (recursion would count twice otherwise).
    const keyOf = (n: ProfileNode) => `${n.callFrame.functionName || "(anonymous)"}  ${n.callFrame.url.replace(`file://${root}`, "")}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ""}`;
    const walk = (id: number, onPath: Set<string>): number => {
      const n = nodes.get(id)!;
      const key = keyOf(n);
      let t = n.callFrame.functionName === "(idle)" ? 0 : (selfUs.get(id) ?? 0) / 1000;
      const fresh = !onPath.has(key);
      if (fresh) onPath.add(key);
      for (const c of n.children ?? []) t += walk(c, onPath);
      if (fresh) {
        onPath.delete(key);
        inclusive.set(key, (inclusive.get(key) ?? 0) + t);
      }
      return t;
    };
    walk(p.nodes[0]!.id, new Set());
  }
  return { byFunction, byFile, inclusive, totalMs };
}

stopChildrenOnSignals();
const bench = await startPairBench("profile", root);
try {
  const { env } = bench;
  const profDir = join(env.dir, "prof");
  await mkdir(profDir);
  const runtime = values.runtime as "node" | "bun";
  const profFlags = process.env.REMORA_PROFILE_HEAP ? ["--heap-prof", "--heap-prof-dir", profDir] : ["--cpu-prof", "--cpu-prof-dir", profDir];
  const pair = await startRemoraPair(env, runtime, values["no-prof"] ? [] : profFlags);

  const idleSeconds = Number(values["idle-seconds"]);
  const idle0 = pair.proxies.map((p) => p.stats());
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const idleCpu = cpuOf(pair.proxies.map((p) => p.stats())) - cpuOf(idle0);

  const base = { target: pair.entry, host: pair.host, path: "/charge", connections: 64, timeoutMs: 10_000 };
  await runChild<LoadResult>("generator.ts", { ...base, mode: "closed", warmupMs: 0, durationMs: 3000 } satisfies LoadSpec, 60_000);
  const before = pair.proxies.map((p) => p.stats());
  const load = await runChild<LoadResult>("generator.ts", { ...base, mode: "open", rate: Number(values.rate), warmupMs: 1000, durationMs: Number(values.seconds) * 1000 } satisfies LoadSpec, 120_000);
  const cpu = cpuOf(pair.proxies.map((p) => p.stats())) - cpuOf(before);
  console.log(`idle: ${(idleCpu / idleSeconds).toFixed(4)} cores for the pair over ${idleSeconds} s`);
  console.log(
    `load: ${values.rate} rps offered, ${Math.round(load.achievedRps)} achieved, p50 ${load.latencyMs.p50.toFixed(2)} p99 ${load.latencyMs.p99.toFixed(2)} ms, errors ${load.errors}; ` +
      `pair CPU ${((cpu * 1000) / load.sent).toFixed(3)} s per 1,000 requests (orders + payments)`,
  );
  await pair.stop();
  if (!values["no-prof"]) {
    const files = (await readdir(profDir)).filter((f) => f.endsWith(".cpuprofile"));
    const profiles = await Promise.all(files.map(async (f) => JSON.parse(await readFile(join(profDir, f), "utf8")) as CpuProfile));
    const { byFunction, byFile, inclusive, totalMs } = summarize(profiles);
    const top = Number(values.top);
    const show = (title: string, m: Map<string, number>) => {
      console.log(`\n${title} (self time, both sidecars, whole process life: ${totalMs.toFixed(0)} ms sampled)`);
      for (const [k, ms] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${((ms / totalMs) * 100).toFixed(1).padStart(5)}%  ${ms.toFixed(0).padStart(6)} ms  ${k}`);
    };
    show("by file", byFile);
    show("by function", byFunction);
    // remora's own functions by inclusive time: what each stage costs with everything it calls.
    show("remora functions, inclusive", new Map([...inclusive].filter(([k]) => k.includes(" src/") || k.includes("node_modules/pino"))));
  }
} finally {
  const keep = Boolean(process.env.REMORA_PROFILE_KEEP);
  await bench.close({ keep });
  await stopAll();
  if (keep) console.log(`kept ${bench.env.dir}`);
}
