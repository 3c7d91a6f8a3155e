// Before/after for an optimization: two copies of the sources (e.g. a snapshot taken
// before the change and one with it), each run as a remora node pair by bench/profile.ts
// at the same fixed rate, alternating A, B, A, B so drift on a shared machine hits both.
// Reports pair CPU per 1,000 requests and p50/p99 per side (medians over the rounds).
//
//   node bench/compare.ts --a /tmp/before --b /work/main [--rounds 4] [--rate 500] [--seconds 8]

import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    a: { type: "string" },
    b: { type: "string" },
    rounds: { type: "string", default: "4" },
    rate: { type: "string", default: "500" },
    seconds: { type: "string", default: "8" },
  },
});
if (!values.a || !values.b) throw new Error("give --a DIR and --b DIR (copies of the remora sources with node_modules)");
const profile = fileURLToPath(new URL("./profile.ts", import.meta.url));
const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

const runs: Record<"a" | "b", { cpu: number; p50: number; p99: number }[]> = { a: [], b: [] };
for (let i = 0; i < Number(values.rounds); i++) {
  for (const side of ["a", "b"] as const) {
    const out = execFileSync(process.execPath, [profile, "--no-prof", "--idle-seconds", "1", "--root", values[side]!, "--rate", values.rate, "--seconds", values.seconds], { encoding: "utf8" });
    const m = /p50 ([\d.]+) p99 ([\d.]+) ms.*pair CPU ([\d.]+) s per 1,000/.exec(out);
    if (!m) throw new Error(`no result from profile.ts: ${out}`);
    runs[side].push({ p50: Number(m[1]), p99: Number(m[2]), cpu: Number(m[3]) });
    console.log(`round ${i + 1} ${side}: pair CPU ${m[3]} s / 1k req, p50 ${m[1]} p99 ${m[2]} ms`);
  }
}
for (const side of ["a", "b"] as const) {
  const r = runs[side];
  console.log(`${side} (${values[side]}): median pair CPU ${median(r.map((x) => x.cpu)).toFixed(3)} s / 1k req, p50 ${median(r.map((x) => x.p50)).toFixed(2)} ms, p99 ${median(r.map((x) => x.p99)).toFixed(2)} ms`);
}
const [ca, cb] = [median(runs.a.map((x) => x.cpu)), median(runs.b.map((x) => x.cpu))];
console.log(`b vs a: ${(((cb - ca) / ca) * 100).toFixed(1)}% CPU per request`);
