// JavaScript objects a Bun sidecar allocates per request, by JavaScriptCore cell type: the
// number behind its garbage collections (each pause is a latency spike, so allocation per
// request sets the p99 floor; see RESULTS.md). One sidecar of the pair runs in this process
// (`--side orders`, the outbound, or `--side payments`, the inbound); the other sidecar,
// the app and the client are child processes, so nothing else allocates here. Counts are
// JSC's live-cell census after N requests minus before, the minimum of several rounds in
// which no collection ran.
//
//   bun bench/alloc-count.ts [--side orders|payments] [--requests 300] [--rounds 3] [--top 30]

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

declare const Bun: { gc(force: boolean): void; sleep(ms: number): Promise<void> };
// A variable specifier: the module exists only under Bun, and tsc has no types for it.
const jsc: string = "bun:jsc";
const { heapStats } = (await import(jsc)) as { heapStats(): { objectTypeCounts: Record<string, number> } };

const { values } = parseArgs({
  options: {
    side: { type: "string", default: "orders" },
    requests: { type: "string", default: "300" },
    rounds: { type: "string", default: "3" },
    top: { type: "string", default: "30" },
  },
});
const root = fileURLToPath(new URL("..", import.meta.url));
const N = Number(values.requests);
const remora = join(root, "bin/remora.js");
const dir = mkdtempSync(join(tmpdir(), "remora-alloc-"));
const children: ChildProcess[] = [];

/** Starts a child and resolves with the first stdout line that `pick` accepts. */
function start(command: string, args: string[], pick: (line: Record<string, unknown>) => string | undefined): Promise<string> {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "inherit"] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d;
      for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const found = pick(JSON.parse(line));
          if (found !== undefined) return resolve(found);
        } catch {
          // not JSON: keep reading
        }
      }
    });
    child.once("exit", (code) => reject(new Error(`${command} ${args.join(" ")} exited with ${code}`)));
  });
}

/** N requests over 4 keep-alive connections from a separate process; resolves with how many answered 200. */
function drive(url: string, n: number): Promise<number> {
  const script = `let ok = 0, i = 0; await Promise.all(Array.from({ length: 4 }, async () => { while (i++ < ${n}) { const r = await fetch(${JSON.stringify(url)}, { headers: { host: "payments" } }); await r.arrayBuffer(); if (r.status === 200) ok++; } })); console.log(ok);`;
  const child = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve) => {
    let out = "";
    child.stdout!.on("data", (d: Buffer) => (out += d));
    child.once("exit", () => resolve(Number(out.trim())));
  });
}

try {
  const certs = join(dir, "certs");
  await start(process.execPath, [remora, "certs", "--out", certs, "orders", "payments"], () => undefined).catch(() => {});
  const id = (s: string) => `identity: { cert: ${join(certs, `${s}.pem`)}, key: ${join(certs, `${s}-key.pem`)}, bundle: ${join(certs, "root.pem")} }\n`;
  const app = await start(process.execPath, [join(root, "bench/upstream-app.ts")], (r) => r.listening as string | undefined);
  const inProcess = values.side === "payments" ? "payments" : "orders";
  const run = async (name: string, yaml: string): Promise<Record<string, unknown>> => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, yaml);
    if (name !== inProcess) {
      const ready = await start(process.execPath, [remora, "proxy", "--config", file], (r) => (r.msg === "sidecar ready" ? JSON.stringify(r) : undefined));
      return JSON.parse(ready);
    }
    // In this process: the ready line goes to our stdout, so the addresses are fixed up front.
    const { proxyCommand } = await import("../src/cli/proxy.ts");
    void proxyCommand(["--config", file]);
    await Bun.sleep(1500);
    return {};
  };
  const free = async (): Promise<number> => {
    const { createServer } = await import("node:net");
    return new Promise((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => resolve(port));
      });
    });
  };
  const paymentsIn = `127.0.0.1:${await free()}`;
  const ordersOut = `127.0.0.1:${await free()}`;
  await run("payments", id("payments") + `inbound: { listen: "${paymentsIn}", app: "${app}" }\noutbound: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n`);
  await run(
    "orders",
    id("orders") + `outbound: { listen: "${ordersOut}" }\nadmin: { listen: "127.0.0.1:0" }\nendpoints:\n  payments:\n    - { address: "${paymentsIn}", identity: spiffe://cluster.local/ns/default/sa/payments }\n`,
  );
  const url = `http://${ordersOut}/charge`;
  const warm = await drive(url, 3000); // JIT, pools, lazily built structures
  if (warm !== 3000) throw new Error(`warm-up: only ${warm} of 3000 requests answered 200`);

  const rounds: Record<string, number>[] = [];
  let spoiled = 0;
  for (let i = 0; rounds.length < Number(values.rounds); i++) {
    if (i >= Number(values.rounds) * 4) throw new Error(`a collection ran during ${spoiled} of ${i} rounds: lower --requests`);
    Bun.gc(true);
    // Unreachable from the start: any collection during the round clears it, and a round a
    // collection ran in undercounts, so it is run again.
    const probe = new WeakRef({});
    const before = heapStats().objectTypeCounts;
    const ok = await drive(url, N);
    const after = heapStats().objectTypeCounts;
    if (ok !== N) throw new Error(`round ${i + 1}: only ${ok} of ${N} requests answered 200`);
    if (probe.deref() === undefined) {
      spoiled++;
      continue;
    }
    const perRequest: Record<string, number> = {};
    for (const k of new Set([...Object.keys(before), ...Object.keys(after)])) perRequest[k] = ((after[k] ?? 0) - (before[k] ?? 0)) / N;
    rounds.push(perRequest);
  }
  // The minimum over clean rounds: leftovers of start-up or of an earlier round only raise them.
  const min: Record<string, number> = {};
  for (const k of Object.keys(rounds[0]!)) min[k] = Math.min(...rounds.map((r) => r[k] ?? 0));
  const rows = Object.entries(min).filter(([, v]) => v >= 0.05).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((a, [, v]) => a + v, 0);
  process.stderr.write(`${inProcess} sidecar (in process, bun): ${total.toFixed(1)} objects per request, min of ${rounds.length} rounds of ${N} (${spoiled} with a collection rerun)\n`);
  for (const [k, v] of rows.slice(0, Number(values.top))) process.stderr.write(`${v.toFixed(2).padStart(8)}  ${k}\n`);
} finally {
  for (const c of children) c.kill();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
