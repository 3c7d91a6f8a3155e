// Config push across replicas (issue 9): how long a policy change, PUT on replica 1, takes to
// reach and be ACKed by N simulated sidecars spread evenly over two `remora control` replicas
// sharing one throwaway PostgreSQL (LISTEN/NOTIFY wakes replica 2). Same method as
// bench/config-push.ts: each watcher has its own mTLS keep-alive connection, fetches the
// snapshot, long-polls with its version, ACKs the new one. Prints JSON; writes no files.
//
//   node bench/config-push-ha.ts [--n 1000] [--services 50]

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:https";
import { createSecureContext, type SecureContext } from "node:tls";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { exportPrivateKeyPem, generateKeyPair, issueSvid, loadCa } from "../src/core/identity/ca.ts";
import { ADMIN_TOKEN_FILE, ROOT_CERT_FILE } from "../src/control/data-dir.ts";
import { PgStore } from "../src/control/pg/pg-store.ts";
import { openPgSecrets } from "../src/control/pg/pg-secrets.ts";
import { decodeStoreKey, importStoreKey } from "../src/control/pg/store-key.ts";
import { startPostgres } from "../tests/integration/support/postgres.ts";
import { onJsonLines } from "../src/cli/json-lines.ts";

const { values } = parseArgs({ options: { n: { type: "string", default: "1000" }, services: { type: "string", default: "50" } } });
const n = Number(values.n);
const serviceCount = Number(values.services);
const remora = fileURLToPath(new URL("../bin/remora.js", import.meta.url));
const SETUP_CONCURRENCY = 200;
const SETTLE_MS = 2_000;

type Reply = { status: number; body: string };
function send(agent: Agent, address: string, method: string, path: string, o: { body?: string; headers?: Record<string, string> } = {}, onWritten?: () => void): Promise<Reply> {
  const [host, port] = address.split(":");
  return new Promise((ok, fail) => {
    const req = request({ agent, host, port: Number(port), method, path, headers: { ...o.headers, ...(o.body === undefined ? {} : { "content-type": "application/json" }) } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", fail);
    if (onWritten) req.on("finish", onWritten);
    req.end(o.body);
  });
}

function startReplica(args: string[]): Promise<{ child: ChildProcess; address: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [remora, "control", ...args, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    onJsonLines(child.stdout!, (rec) => {
      if (rec.msg === "control plane ready") ok({ child, address: rec.address as string });
    });
    child.on("exit", (code) => fail(new Error(`remora control exited ${code} before it was ready`)));
  });
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
};
const summary = (xs: number[]) => ({ p50: +pct(xs, 0.5).toFixed(1), p99: +pct(xs, 0.99).toFixed(1), max: +pct(xs, 1).toFixed(1) });

const pg = await startPostgres();
const dir = await mkdtemp(join(tmpdir(), "remora-push-ha-"));
const children: ChildProcess[] = [];
const agents: Agent[] = [];
try {
  const keyText = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  const keyFile = join(dir, "store.key");
  await writeFile(keyFile, keyText + "\n", { mode: 0o600 });
  const replicas = await Promise.all([0, 1].map((i) => startReplica(["--data", join(dir, `cp${i}`), "--store", pg.url, "--store-key-file", keyFile])));
  children.push(...replicas.map((r) => r.child));
  const rootPem = await readFile(join(dir, "cp0", ROOT_CERT_FILE), "utf8");
  const adminToken = (await readFile(join(dir, "cp0", ADMIN_TOKEN_FILE), "utf8")).trim();
  // The root key lives only in the database (encrypted): read it as a replica would, to sign bench SVIDs.
  const store = await PgStore.open({ url: pg.url });
  const secrets = await openPgSecrets(store, await importStoreKey(decodeStoreKey(keyText, "bench key")), { trustDomain: "cluster.local", now: Date.now() });
  await store.close();
  const ca = await loadCa(rootPem, secrets.ca.keyPem);

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
  await send(admin, replicas[0]!.address, "GET", "/v1/policies", { headers: auth });

  const watchers = Array.from({ length: n }, (_, i) => ({ proxy: `bench-${i}`, replica: i % 2, address: replicas[i % 2]!.address, agent: agentFor(contexts[i % services]), version: "" }));
  let next = 0;
  const setupStart = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(SETUP_CONCURRENCY, n) }, async () => {
      for (let i; (i = next++) < n; ) {
        const w = watchers[i]!;
        const r = await send(w.agent, w.address, "GET", `/v1/config?proxy=${w.proxy}`);
        if (r.status !== 200) throw new Error(`initial GET for ${w.proxy}: HTTP ${r.status} ${r.body}`);
        w.version = (JSON.parse(r.body) as { version: string }).version;
      }
    }),
  );
  const setupMs = performance.now() - setupStart;

  let t0 = 0;
  let written = 0;
  let allWritten!: () => void;
  const writtenAll = new Promise<void>((ok) => (allWritten = ok));
  const results = Promise.all(
    watchers.map(async (w) => {
      for (;;) {
        const r = await send(w.agent, w.address, "GET", `/v1/config?proxy=${w.proxy}&version=${w.version}&wait=60`, {}, () => ++written === n && allWritten());
        if (r.status === 304) continue;
        if (r.status !== 200) throw new Error(`long-poll for ${w.proxy}: HTTP ${r.status} ${r.body}`);
        const delivered = performance.now() - t0;
        const version = (JSON.parse(r.body) as { version: string }).version;
        const ack = await send(w.agent, w.address, "POST", "/v1/config/ack", { body: JSON.stringify({ proxy: w.proxy, version, status: "ACK" }) });
        if (ack.status !== 200) throw new Error(`ACK for ${w.proxy}: HTTP ${ack.status} ${ack.body}`);
        return { replica: w.replica, delivered, acked: performance.now() - t0 };
      }
    }),
  );
  await writtenAll;
  await new Promise((ok) => setTimeout(ok, SETTLE_MS));
  t0 = performance.now();
  const put = await send(admin, replicas[0]!.address, "PUT", "/v1/policies", { body: "route:\n  destination: payments\n  timeout: 2s\n", headers: { ...auth, "content-type": "application/yaml" } });
  const putMs = performance.now() - t0;
  if (put.status !== 200) throw new Error(`PUT /v1/policies: HTTP ${put.status} ${put.body}`);
  const samples = await results;
  const by = (r: number) => samples.filter((s) => s.replica === r);
  console.log(
    JSON.stringify(
      {
        date: new Date().toISOString(),
        runtime: `node ${process.versions.node}`,
        cores: cpus().length,
        n,
        services,
        setup_ms: +setupMs.toFixed(1),
        put_ms: +putMs.toFixed(1),
        replica1_same_as_put: { delivered_ms: summary(by(0).map((s) => s.delivered)), acked_ms: summary(by(0).map((s) => s.acked)) },
        replica2_via_notify: { delivered_ms: summary(by(1).map((s) => s.delivered)), acked_ms: summary(by(1).map((s) => s.acked)) },
        all: { acked_ms: summary(samples.map((s) => s.acked)) },
      },
      null,
      2,
    ),
  );
} finally {
  for (const a of agents) a.destroy();
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
  await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((ok) => c.once("exit", ok)) : undefined)));
  await pg.destroy();
  await rm(dir, { recursive: true, force: true });
}
