// Config push: how long a policy change takes to be ACKed by N watching sidecars (issue 4).
// The control plane runs as a child process (`remora control`); N simulated sidecars in this
// process each hold one mTLS keep-alive connection, long-poll GET /v1/config, and on the new
// snapshot POST /v1/config/ack. Latency = ACK answered - just before PUT /v1/policies is sent.
//
//   node bench/config-push.ts [--n 100,1000,5000] [--services 50]

import { spawn, type ChildProcess } from "node:child_process";
import { readFile, mkdtemp, rm, writeFile, appendFile, access } from "node:fs/promises";
import { Agent, request, type RequestOptions } from "node:https";
import { createSecureContext, type SecureContext } from "node:tls";
import { tmpdir, cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { exportPrivateKeyPem, generateKeyPair, issueSvid, loadCa } from "../src/core/identity/ca.ts";
import { ADMIN_TOKEN_FILE, ROOT_CERT_FILE, ROOT_KEY_FILE } from "../src/control/data-dir.ts";
import { onJsonLines } from "../src/cli/json-lines.ts";

const { values } = parseArgs({ options: { n: { type: "string", default: "100,1000,5000" }, services: { type: "string", default: "50" } } });
const sizes = values.n.split(",").map(Number);
const serviceCount = Number(values.services);
const root = fileURLToPath(new URL("..", import.meta.url));
const remora = join(root, "bin/remora.js");
const SETUP_LIMIT_MS = 120_000;
const PUSH_LIMIT_MS = 60_000;
/** Concurrent connection setups (TLS handshakes) during the initial GETs; the listen backlog is 511. */
const SETUP_CONCURRENCY = 200;
/** Time for the control plane to take in the last long-polls after they were written. */
const SETTLE_MS = 2_000;

interface Reply {
  status: number;
  body: string;
}

function send(agent: Agent, address: string, method: string, path: string, o: { body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  const [host, port] = address.split(":");
  const opts: RequestOptions = { agent, host, port: Number(port), method, path, headers: { ...o.headers, ...(o.body === undefined ? {} : { "content-type": "application/json" }) } };
  return new Promise((ok, fail) => {
    const req = request(opts, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, body }));
      res.on("error", fail);
    });
    req.on("error", fail);
    req.end(o.body);
  });
}

function startControl(dir: string): Promise<{ child: ChildProcess; address: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [remora, "control", "--data", dir, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    onJsonLines(child.stdout!, (rec, line) => {
      if (rec.msg === "control plane ready") ok({ child, address: rec.address as string });
      else if (rec.level !== 30) process.stderr.write(`control: ${line}\n`);
    });
    child.on("exit", (code) => fail(new Error(`remora control exited ${code} before it was ready`)));
  });
}

const pct = (xs: number[], q: number) => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]!;
const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: pct(s, 0.5), p99: pct(s, 0.99), max: s.at(-1)! };
};
const within = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`${what} took over ${ms / 1000} s`)), ms).unref())]);

async function runOnce(n: number) {
  const dir = await mkdtemp(join(tmpdir(), "remora-push-"));
  let child: ChildProcess | undefined;
  const agents: Agent[] = [];
  try {
    const started = await startControl(dir);
    child = started.child;
    const address = started.address;
    const rootPem = await readFile(join(dir, ROOT_CERT_FILE), "utf8");
    const ca = await loadCa(rootPem, await readFile(join(dir, ROOT_KEY_FILE), "utf8"));
    const adminToken = (await readFile(join(dir, ADMIN_TOKEN_FILE), "utf8")).trim();

    // One SVID per simulated service, shared by that service's watchers: the API keys a
    // watcher by ?proxy=, the identity only authorises it. Each watcher has its own agent,
    // hence its own connection and a full handshake (no session cache), like a sidecar.
    const services = Math.min(n, serviceCount);
    const contexts: SecureContext[] = [];
    for (let s = 0; s < services; s++) {
      const keys = await generateKeyPair();
      const certPem = await issueSvid({ ca, spiffeId: `spiffe://cluster.local/ns/bench/sa/svc-${s}`, publicKey: keys.publicKey, ttlMs: 3_600_000, now: Date.now() });
      contexts.push(createSecureContext({ cert: certPem, key: await exportPrivateKeyPem(keys.privateKey), ca: rootPem }));
    }
    const agentFor = (ctx?: SecureContext) => {
      const a = new Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0, ...(ctx ? { secureContext: ctx } : { ca: rootPem }), checkServerIdentity: () => undefined });
      agents.push(a);
      return a;
    };
    const admin = agentFor();
    const auth = { authorization: `Bearer ${adminToken}` };
    await send(admin, address, "GET", "/v1/policies", { headers: auth }); // warm the admin connection

    const watchers = Array.from({ length: n }, (_, i) => ({ proxy: `bench-${i}`, agent: agentFor(contexts[i % services]), version: "" }));

    // Phase 1: every watcher fetches the current snapshot, SETUP_CONCURRENCY at a time.
    const setupStart = performance.now();
    let next = 0;
    const fetchInitial = async () => {
      for (let i; (i = next++) < n; ) {
        const w = watchers[i]!;
        const r = await send(w.agent, address, "GET", `/v1/config?proxy=${w.proxy}`);
        if (r.status !== 200) throw new Error(`initial GET for ${w.proxy}: HTTP ${r.status} ${r.body}`);
        w.version = (JSON.parse(r.body) as { version: string }).version;
      }
    };
    await within(Promise.all(Array.from({ length: Math.min(SETUP_CONCURRENCY, n) }, fetchInitial)), SETUP_LIMIT_MS, `initial GET by ${n} watchers`);
    const connectedMs = performance.now() - setupStart;

    // Phase 2: every watcher long-polls with its version; on a new snapshot it ACKs.
    let t0 = 0;
    let written = 0;
    let allWritten!: () => void;
    const writtenAll = new Promise<void>((ok) => (allWritten = ok));
    const watch = async (w: (typeof watchers)[number]) => {
      for (;;) {
        const [host, port] = address.split(":");
        const r = await new Promise<Reply>((ok, fail) => {
          const req = request({ agent: w.agent, host, port: Number(port), path: `/v1/config?proxy=${w.proxy}&version=${w.version}&wait=60` }, (res) => {
            let body = "";
            res.setEncoding("utf8");
            res.on("data", (c: string) => (body += c));
            res.on("end", () => ok({ status: res.statusCode ?? 0, body }));
          });
          req.on("error", fail);
          req.on("finish", () => {
            if (++written === n) allWritten();
          });
          req.end();
        });
        if (r.status === 304) continue;
        if (r.status !== 200) throw new Error(`long-poll for ${w.proxy}: HTTP ${r.status} ${r.body}`);
        const t1 = performance.now();
        const version = (JSON.parse(r.body) as { version: string }).version;
        const ack = await send(w.agent, address, "POST", "/v1/config/ack", { body: JSON.stringify({ proxy: w.proxy, version, status: "ACK" }) });
        if (ack.status !== 200) throw new Error(`ACK for ${w.proxy}: HTTP ${ack.status} ${ack.body}`);
        return { delivered: t1 - t0, acked: performance.now() - t0 };
      }
    };
    const waitStart = performance.now();
    const results = Promise.all(watchers.map(watch));
    results.catch(() => {});
    await within(writtenAll, SETUP_LIMIT_MS, `starting ${n} long-polls`);
    const waitingMs = performance.now() - waitStart;
    await new Promise((ok) => setTimeout(ok, SETTLE_MS));

    const doc = `route:\n  destination: payments\n  timeout: ${1000 + n}ms\n`;
    t0 = performance.now();
    const put = await send(admin, address, "PUT", "/v1/policies", { body: doc, headers: { ...auth, "content-type": "application/yaml" } });
    const putMs = performance.now() - t0;
    if (put.status !== 200) throw new Error(`PUT /v1/policies: HTTP ${put.status} ${put.body}`);
    const samples = await within(results, PUSH_LIMIT_MS, `ACKs from ${n} watchers`);
    const delivered = stats(samples.map((s) => s.delivered));
    const acked = stats(samples.map((s) => s.acked));
    return { n, services, connected_ms: connectedMs, long_polls_written_ms: waitingMs, put_ms: putMs, delivered_ms: delivered, acked_ms: acked, all_acked_ms: acked.max };
  } finally {
    for (const a of agents) a.destroy();
    if (child && child.exitCode === null) {
      const exited = new Promise((ok) => child!.once("exit", ok));
      child.kill("SIGTERM");
      await within(exited, 5_000, "control plane shutdown").catch(() => child!.kill("SIGKILL"));
    }
    await rm(dir, { recursive: true, force: true });
  }
}

const rows = [];
const failures: { n: number; error: string }[] = [];
for (const n of sizes) {
  try {
    const r = await runOnce(n);
    rows.push(r);
    const f = (x: number) => x.toFixed(1);
    console.log(`N=${n}: setup ${f(r.connected_ms)} ms, long-polls sent ${f(r.long_polls_written_ms)} ms, PUT ${f(r.put_ms)} ms, ` +
      `delivered p50 ${f(r.delivered_ms.p50)} p99 ${f(r.delivered_ms.p99)} max ${f(r.delivered_ms.max)}, ` +
      `ACKed p50 ${f(r.acked_ms.p50)} p99 ${f(r.acked_ms.p99)} max ${f(r.acked_ms.max)} ms`);
  } catch (e) {
    failures.push({ n, error: String((e as Error).message ?? e) });
    console.log(`N=${n}: FAILED: ${(e as Error).message}`);
  }
}

const result = {
  date: new Date().toISOString(),
  runtime: `node ${process.versions.node}`,
  machine: { cores: cpus().length, cpu: cpus()[0]?.model, memory_gib: Math.round(totalmem() / 2 ** 30) },
  setup: { services_max: serviceCount, setup_concurrency: SETUP_CONCURRENCY, settle_ms: SETTLE_MS, long_poll_wait_s: 60 },
  rows,
  failures,
};
const day = result.date.slice(0, 10);
await writeFile(join(root, "bench/results", `${day}-config-push.json`), JSON.stringify(result, null, 2) + "\n");

const md = join(root, "bench/RESULTS.md");
const exists = await access(md).then(() => true, () => false);
if (!exists) await writeFile(md, "# Benchmark results\n\nEvery number here comes from a script in `bench/`; raw results are in `bench/results/`.\n");
const ms = (x: number) => x.toFixed(1);
const table = rows
  .map((r) => `| ${r.n.toLocaleString("en")} | ${ms(r.connected_ms)} | ${ms(r.put_ms)} | ${ms(r.delivered_ms.p50)} | ${ms(r.delivered_ms.p99)} | ${ms(r.acked_ms.p50)} | ${ms(r.acked_ms.p99)} | ${ms(r.acked_ms.max)} |`)
  .join("\n");
await appendFile(
  md,
  `\n## Config push: policy change to ACK by N watchers (${day})\n\n` +
    `\`node bench/config-push.ts\`: \`remora control\` as a child process (${result.runtime}); N simulated sidecars in the bench ` +
    `process on loopback, each with its own mTLS keep-alive connection (full handshake, ECDSA P-256; one SVID per simulated ` +
    `service, up to ${serviceCount} services, shared by that service's watchers). All N fetch the snapshot, then long-poll ` +
    `with its version; ${SETTLE_MS / 1000} s after the last long-poll is written, PUT /v1/policies (t0). Delivered = snapshot read; ` +
    `ACKed = POST /v1/config/ack answered; both from t0, which includes the PUT itself. Both processes share the ${result.machine.cores} cores.\n\n` +
    `| N | setup ms (all N connected + first snapshot) | PUT ms | delivered p50 | delivered p99 | ACKed p50 ms | ACKed p99 ms | ACKed max ms |\n|---|---|---|---|---|---|---|---|\n${table}\n` +
    (failures.length ? `\nFailed: ${failures.map((f) => `N=${f.n}: ${f.error}`).join("; ")}\n` : ""),
);
