// Sequential latency: N requests one after another on one keep-alive connection, direct
// to the app and through an orders -> payments sidecar pair (mTLS between them), in the
// same run, alternating blocks so drift hits both paths alike. A first number, not the
// open-loop benchmark (that one comes with hdr-histogram and HAProxy as a peer).
//
//   node bench/sequential-latency.ts [--requests 1000]

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile, mkdir } from "node:fs/promises";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "node:http";
import { parseArgs } from "node:util";
import { onJsonLines } from "../src/cli/json-lines.ts";

const { values } = parseArgs({ options: { requests: { type: "string", default: "1000" }, block: { type: "string", default: "100" } } });
const total = Number(values.requests);
const block = Number(values.block);
const root = fileURLToPath(new URL("..", import.meta.url));
const remora = join(root, "bin/remora.js");
const children: ChildProcess[] = [];

function start(args: string[], ready: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    onJsonLines(child.stdout!, (rec) => {
      if (ready(rec)) ok(rec);
    });
    child.on("exit", (code) => fail(new Error(`${args.join(" ")} exited ${code}`)));
  });
}

function once(agent: Agent, address: string, host: string): Promise<number> {
  const [h, p] = address.split(":");
  const t0 = performance.now();
  return new Promise((ok, fail) => {
    const req = request({ agent, host: h, port: Number(p), path: "/charge", headers: { host } }, (res) => {
      res.resume();
      res.on("end", () => (res.statusCode === 200 ? ok(performance.now() - t0) : fail(new Error(`status ${res.statusCode}`))));
    });
    req.on("error", fail);
    req.end();
  });
}

const pct = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.ceil(q * xs.length) - 1)]!;

const dir = await mkdtemp(join(tmpdir(), "remora-bench-"));
try {
  await mkdir(join(dir, "certs"));
  await new Promise<void>((ok, fail) => spawn(process.execPath, [remora, "certs", "--out", join(dir, "certs"), "orders", "payments"], { stdio: "ignore" }).on("exit", (c) => (c === 0 ? ok() : fail(new Error("certs failed")))));
  const app = (await start([join(root, "bench/upstream-app.ts")], (r) => "listening" in r)).listening as string;
  const id = (s: string) => `identity: { cert: certs/${s}.pem, key: certs/${s}-key.pem, bundle: certs/root.pem }\n`;
  await writeFile(join(dir, "payments.yaml"), `${id("payments")}inbound: { listen: "127.0.0.1:0", app: "${app}" }\noutbound: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\n`);
  const payments = await start([remora, "proxy", "--config", join(dir, "payments.yaml")], (r) => r.msg === "sidecar ready");
  await writeFile(
    join(dir, "orders.yaml"),
    `${id("orders")}outbound: { listen: "127.0.0.1:0" }\nadmin: { listen: "127.0.0.1:0" }\nendpoints:\n  payments: [{ address: "${payments.inbound}", identity: spiffe://cluster.local/ns/default/sa/payments }]\n`,
  );
  const orders = await start([remora, "proxy", "--config", join(dir, "orders.yaml")], (r) => r.msg === "sidecar ready");

  const paths = { direct: { address: app, host: "payments" }, mesh: { address: orders.outbound as string, host: "payments" } };
  const samples: Record<string, number[]> = { direct: [], mesh: [] };
  const agents = { direct: new Agent({ keepAlive: true, maxSockets: 1 }), mesh: new Agent({ keepAlive: true, maxSockets: 1 }) };
  for (const k of ["direct", "mesh"] as const) for (let i = 0; i < 200; i++) await once(agents[k], paths[k].address, paths[k].host); // warm-up
  for (let done = 0; done < total; done += block) {
    for (const k of ["direct", "mesh"] as const) {
      for (let i = 0; i < Math.min(block, total - done); i++) samples[k]!.push(await once(agents[k], paths[k].address, paths[k].host));
    }
  }
  const rows = Object.entries(samples).map(([path, xs]) => {
    xs.sort((a, b) => a - b);
    return { path, n: xs.length, p50: pct(xs, 0.5), p90: pct(xs, 0.9), p99: pct(xs, 0.99), max: xs.at(-1)! };
  });
  const result = {
    date: new Date().toISOString(),
    runtime: `node ${process.versions.node}`,
    cpu: `${cpus().length} x ${cpus()[0]?.model}`,
    requests: total,
    rows,
  };
  console.log(`${result.runtime}, ${result.cpu}, ${total} sequential requests per path, 1 KiB responses`);
  console.log("path      p50 ms  p90 ms  p99 ms  max ms");
  for (const r of rows) console.log(`${r.path.padEnd(8)} ${[r.p50, r.p90, r.p99, r.max].map((x) => x.toFixed(3).padStart(7)).join(" ")}`);
  const added = (q: "p50" | "p99") => rows[1]![q] - rows[0]![q];
  console.log(`added by the sidecar pair: p50 ${added("p50").toFixed(3)} ms, p99 ${added("p99").toFixed(3)} ms`);
  await writeFile(join(root, "bench/results", `${result.date.slice(0, 10)}-sequential-node.json`), JSON.stringify(result, null, 2) + "\n");
} finally {
  for (const c of children) c.kill("SIGTERM");
  await rm(dir, { recursive: true, force: true });
}
