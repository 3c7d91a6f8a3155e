// Where one sidecar of a Bun pair spends its CPU at a fixed rate, sampled by Linux perf
// (cpu-clock, call graphs) rather than Bun's --cpu-prof: perf counts only time the process
// runs, and sees the kernel and the runtime's native code too. JavaScriptCore writes a
// JITDump of the code it compiles (BUN_JSC_useJITDump), turned here into the perf map that
// names JIT frames, so each sample is charged to the nearest JavaScript function on its
// stack: its own compiled code plus the native runtime code and system calls it called.
//
//   node bench/perf-profile.ts [--side orders|payments] [--rate 1000] [--seconds 10] [--top 30] [--root DIR]
//   (needs perf: apt-get install linux-perf)

import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runChild } from "./load/child.ts";
import type { LoadResult, LoadSpec } from "./load/spec.ts";
import { startRemoraPair } from "./paths/remora-pair.ts";
import { startPairBench } from "./support/bench-env.ts";
import { chargeToNearestJs, jitDumpToPerfMap, perfOutput, recordPerf } from "./support/perf-split.ts";
import { stopAll, stopChildrenOnSignals } from "./support/processes.ts";

const { values } = parseArgs({
  options: {
    side: { type: "string", default: "orders" },
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "10" },
    top: { type: "string", default: "30" },
    root: { type: "string" },
  },
});
const root = values.root ?? fileURLToPath(new URL("..", import.meta.url));
const seconds = Number(values.seconds);

stopChildrenOnSignals();
const bench = await startPairBench("perf-profile", root);
const maps: string[] = [];
try {
  const { env } = bench;
  process.env.BUN_JSC_useJITDump = "1";
  process.env.BUN_JSC_jitDumpDirectory = env.dir;
  const pair = await startRemoraPair(env, "bun");
  delete process.env.BUN_JSC_useJITDump;
  delete process.env.BUN_JSC_jitDumpDirectory;
  const base = { target: pair.entry, host: pair.host, path: "/charge", connections: 64, timeoutMs: 10_000 };
  await runChild<LoadResult>("generator.ts", { ...base, mode: "closed", warmupMs: 0, durationMs: 3000 } satisfies LoadSpec, 60_000);

  const proxy = pair.proxies[values.side === "payments" ? 1 : 0]!;
  const data = join(env.dir, "perf.data");
  const recording = recordPerf(proxy.pid, data, { callGraph: true });
  const cpu0 = proxy.stats().cpuSeconds;
  const load = await runChild<LoadResult>("generator.ts", { ...base, mode: "open", rate: Number(values.rate), warmupMs: 0, durationMs: seconds * 1000 } satisfies LoadSpec, seconds * 1000 + 60_000);
  const cpuUs = ((proxy.stats().cpuSeconds - cpu0) * 1e6) / load.sent;
  const split = await recording.stop();

  // perf names anonymous JIT code after /tmp/perf-<pid>.map; JSC names its dump jit-<tid>-<pid>.dump.
  for (const file of (await readdir(env.dir)).filter((f) => /^jit-\d+-\d+\.dump$/.test(f))) {
    const pid = /^jit-\d+-(\d+)\.dump$/.exec(file)![1]!;
    const map = `/tmp/perf-${pid}.map`;
    await writeFile(map, jitDumpToPerfMap(await readFile(join(env.dir, file))));
    maps.push(map);
  }
  const { byFunction, samples, mainThread } = chargeToNearestJs(await perfOutput(["script", "-i", data, "-F", "tid,ip,sym,dso"]));
  const pct = (n: number) => `${((n / samples) * 100).toFixed(1).padStart(5)}%`;
  const us = (f: number) => `${(cpuUs * f).toFixed(0).padStart(4)} µs`;

  console.log(`${proxy.name} at ${values.rate} rps (${Math.round(load.achievedRps)} achieved, errors ${load.errors}): ${cpuUs.toFixed(0)} µs CPU per request, ${samples} samples`);
  console.log(`  kernel ${us(split.kernel)}, native user code ${us(split.native)}, compiled JavaScript ${us(split.jit)}; off the main thread ${(split.otherThreads * 100).toFixed(0)}%`);
  console.log(`\nmain thread (${pct(mainThread)} of samples), each sample charged to the nearest JavaScript function on its stack:`);
  console.log("  all     below   function (below: native runtime code or system calls it called)");
  for (const [name, n] of [...byFunction].sort((a, b) => b[1].all - a[1].all).slice(0, Number(values.top))) {
    console.log(`  ${pct(n.all)} ${pct(n.below)}  ${name}`);
  }
  await pair.stop();
} finally {
  await Promise.all(maps.map((m) => rm(m, { force: true })));
  await bench.close();
  await stopAll();
}
