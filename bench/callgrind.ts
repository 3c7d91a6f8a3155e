// Instructions per request through a remora node sidecar pair, counted by valgrind's
// callgrind: unlike CPU time, an instruction count barely moves when other work shares the
// machine, so a before/after of a few percent is visible on a busy 2-core box. Both
// sidecars run under callgrind; after a warm-up the counters are zeroed, N sequential
// requests go through, and the counters are dumped.
//
//   node bench/callgrind.ts [--root DIR ...] [--requests 1000] [--warmup 1500] [--node-flags "--single-threaded"]
//   (several --root: each a copy of the sources, measured in turn, e.g. before and after)

import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { endpointsYaml, PAYMENTS_ID } from "./paths/remora-pair.ts";
import { startProcess, stopAll, stopChildrenOnSignals, type BenchProcess } from "./support/processes.ts";

const { values } = parseArgs({
  options: {
    root: { type: "string", multiple: true },
    requests: { type: "string", default: "1000" },
    warmup: { type: "string", default: "1500" },
    method: { type: "string", default: "GET" },
    /** V8 without background threads: JIT and GC work lands at the same point of every run. */
    "node-flags": { type: "string", default: "--single-threaded" },
  },
});
const benchRoot = fileURLToPath(new URL("..", import.meta.url));
const roots = values.root ?? [benchRoot];
const N = Number(values.requests);

function once(agent: Agent, address: string): Promise<void> {
  const i = address.lastIndexOf(":");
  return new Promise((ok, fail) => {
    const req = request({ agent, host: address.slice(0, i), port: Number(address.slice(i + 1)), method: values.method, path: "/charge", headers: { host: "payments" } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? ok() : fail(new Error(`status ${res.statusCode}`))));
    });
    req.on("error", fail);
    req.end(values.method === "POST" ? '{"amount_cents":4200}' : undefined);
  });
}

/** Total Ir of a callgrind dump ("summary:" or "totals:" line). */
async function instructions(file: string): Promise<number> {
  const text = await readFile(file, "utf8");
  const m = /^(?:summary|totals):\s+(\d+)/m.exec(text);
  return Number(m?.[1] ?? NaN);
}

stopChildrenOnSignals();
const dir = await mkdtemp(join(tmpdir(), "remora-callgrind-"));
try {
  const certs = join(dir, "certs");
  await mkdir(certs);
  execFileSync(process.execPath, [join(benchRoot, "bin/remora.js"), "certs", "--out", certs, "orders", "payments"], { stdio: "ignore" });
  const app = await startProcess({ name: "app", command: process.execPath, args: [join(benchRoot, "bench/upstream-app.ts")], logFile: join(dir, "app.log"), ready: { line: (r) => typeof r.listening === "string" } });
  const appAddress = app.readyLine!.listening as string;

  for (const [k, root] of roots.entries()) {
    const out = join(dir, `cg-${k}`);
    await mkdir(out);
    const id = (s: string) => `identity: { cert: ${join(certs, `${s}.pem`)}, key: ${join(certs, `${s}-key.pem`)}, bundle: ${join(certs, "root.pem")} }\n`;
    const start = async (name: string, yaml: string): Promise<BenchProcess> => {
      const file = join(dir, `${name}-${k}.yaml`);
      await writeFile(file, yaml);
      return startProcess({
        name,
        command: "valgrind",
        args: ["--tool=callgrind", `--callgrind-out-file=${join(out, `${name}.%p.out`)}`, process.execPath, ...values["node-flags"].split(" ").filter(Boolean), join(root, "bin/remora.js"), "proxy", "--config", file, "--watch-interval", "600s"],
        logFile: join(dir, `${name}-${k}.log`),
        ready: { line: (r) => r.msg === "sidecar ready" },
        timeoutMs: 300_000,
      });
    };
    const listen = `outbound: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n`;
    const payments = await start("payments", `${id("payments")}inbound: { listen: "127.0.0.1:0", app: "${appAddress}" }\n${listen}`);
    const orders = await start("orders", `${id("orders")}${listen}${endpointsYaml("payments", [payments.readyLine!.inbound as string], PAYMENTS_ID)}`);
    const entry = orders.readyLine!.outbound as string;
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    for (let i = 0; i < Number(values.warmup); i++) await once(agent, entry);
    // Zero, run N, dump: the dump then holds exactly these N requests (plus idle timers).
    for (const p of [orders, payments]) execFileSync("callgrind_control", ["--zero", String(p.pid)], { stdio: "ignore" });
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await once(agent, entry);
    const ms = performance.now() - t0;
    for (const p of [orders, payments]) execFileSync("callgrind_control", ["--dump=measured", String(p.pid)], { stdio: "ignore" });
    agent.destroy();
    await orders.stop();
    await payments.stop();
    const per: Record<string, number> = {};
    for (const f of await readdir(out)) {
      // Dumps are NAME.PID.out.N (requested) and NAME.PID.out (at exit); only the requested one counts.
      const m = /^(orders|payments)\.\d+\.out\.\d+$/.exec(f);
      if (m) per[m[1]!] = (await instructions(join(out, f))) / N;
    }
    const total = (per.orders ?? NaN) + (per.payments ?? NaN);
    console.log(
      `${root}: ${N} ${values.method} requests, instructions per request: orders ${Math.round(per.orders ?? NaN).toLocaleString("en-US")}, ` +
        `payments ${Math.round(per.payments ?? NaN).toLocaleString("en-US")}, pair ${Math.round(total).toLocaleString("en-US")} (${(ms / N).toFixed(1)} ms per request under valgrind)`,
    );
  }
} finally {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
}
