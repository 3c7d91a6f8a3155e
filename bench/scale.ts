// Scale harness (issue 11): one `remora control` child process holding a large mesh, N
// services with M endpoints each (seeded into its state file, then served with --lapse 24h,
// since registering 10^4 proxies one PUT at a time is quadratic in the file store's saves).
//
// (a) a REAL sidecar process (`remora proxy --destinations` 3 services, on-demand by default): its RSS
//     and the config it holds (admin /config bytes) with a small and a large mesh; the
//     `--whole-mesh` (v1) sidecar alongside for contrast.
// (b) push fan-out: K simulated watchers (own mTLS connection each, like config-push.ts)
//     long-poll POST /v2/config, each watching 3 of the first HOT services; endpoint churn
//     through the API (PUT/DELETE /v1/proxies with the service's SVID) at a set rate. Per
//     change: time until every watcher of that service has it, and bytes sent for it.
//
//   node bench/scale.ts [--small 10] [--large 10000] [--fanout 500,5000] [--watchers 1000] [--endpoints 3] [--changes 20] [--rate 4]

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { Agent, request } from "node:https";
import { createSecureContext, type SecureContext } from "node:tls";
import { tmpdir, cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { exportPrivateKeyPem, generateKeyPair, issueSvid, loadCa, type SigningCa } from "../src/core/identity/ca.ts";
import type { CryptoKeyPair } from "../src/core/identity/web-crypto.ts";
import { ROOT_CERT_FILE, ROOT_KEY_FILE } from "../src/control/data-dir.ts";
import { STATE_FILE } from "../src/control/file-store.ts";
import { emptyState, type ControlState, type ProxyRecord } from "../src/control/store.ts";
import { onJsonLines } from "../src/cli/json-lines.ts";

const { values } = parseArgs({
  options: {
    small: { type: "string", default: "10" },
    large: { type: "string", default: "10000" },
    fanout: { type: "string", default: "500,5000" },
    watchers: { type: "string", default: "1000" },
    endpoints: { type: "string", default: "3" },
    changes: { type: "string", default: "20" },
    rate: { type: "string", default: "4" },
    skip: { type: "string", default: "" },
  },
});
const M = Number(values.endpoints);
const K = Number(values.watchers);
const HOT = 100;
const root = fileURLToPath(new URL("..", import.meta.url));
const remora = join(root, "bin/remora.js");
const TD = "cluster.local";

interface Control {
  child: ChildProcess;
  address: string;
  dir: string;
  rootPem: string;
  ca: SigningCa;
}

function waitForLog(child: ChildProcess, msg: string, what: string): Promise<Record<string, unknown>> {
  return new Promise((ok, fail) => {
    onJsonLines(child.stdout!, (rec) => {
      if (rec.msg === msg) ok(rec);
    });
    child.on("exit", (code) => fail(new Error(`${what} exited ${code} before "${msg}"`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((ok) => child.once("exit", ok));
  child.kill("SIGTERM");
  await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000))]);
  if (child.exitCode === null) child.kill("SIGKILL");
}

const startControlProcess = async (dir: string, extra: string[] = []) => {
  const child = spawn(process.execPath, [remora, "control", "--data", dir, "--listen", "127.0.0.1:0", ...extra], { stdio: ["ignore", "pipe", "inherit"] });
  const rec = await waitForLog(child, "control plane ready", "remora control");
  return { child, address: rec.address as string };
};

/** A control plane whose state holds `services` services with M endpoints each (192.0.2.0/24 style fake addresses). */
async function meshOf(services: number): Promise<Control> {
  const dir = await mkdtemp(join(tmpdir(), "remora-scale-"));
  const first = await startControlProcess(dir);
  await stop(first.child);
  const state = (await readFile(join(dir, STATE_FILE), "utf8").then((t) => JSON.parse(t) as ControlState, () => emptyState()));
  for (let s = 0; s < services; s++) {
    for (let e = 0; e < M; e++) {
      const p: ProxyRecord = { proxy: `svc-${s}-${e}`, service: `svc-${s}`, namespace: "default", identity: `spiffe://${TD}/ns/default/sa/svc-${s}`, address: `10.${(s >> 8) & 255}.${s & 255}.${e + 1}:15006` };
      state.proxies[p.proxy] = p;
    }
  }
  state.version++;
  await writeFile(join(dir, STATE_FILE), JSON.stringify(state));
  const { child, address } = await startControlProcess(dir, ["--lapse", "24h"]);
  const rootPem = await readFile(join(dir, ROOT_CERT_FILE), "utf8");
  const ca = await loadCa(rootPem, await readFile(join(dir, ROOT_KEY_FILE), "utf8"));
  return { child, address, dir, rootPem, ca };
}

async function close(c: Control): Promise<void> {
  await stop(c.child);
  await rm(c.dir, { recursive: true, force: true });
}

function get(address: string, path: string): Promise<string> {
  return fetch(`http://${address}${path}`).then((r) => r.text());
}

const rssKib = async (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN);

/** (a): one real sidecar process against a mesh of `services`; on-demand or whole-mesh. */
async function sidecarFootprint(c: Control, onDemand: boolean) {
  const token = await new Promise<string>((ok, fail) => {
    const t = spawn(process.execPath, [remora, "token", "--service", "bench-client", "--control", `https://${c.address}`, "--data", c.dir], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    t.stdout.on("data", (d) => (out += d));
    t.on("exit", (code) => (code === 0 ? ok(out.trim()) : fail(new Error(`remora token exited ${code}`))));
  });
  const args = ["proxy", "--control", `https://${c.address}`, "--ca", join(c.dir, ROOT_CERT_FILE), "--token", token, "--service", "bench-client", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
  if (onDemand) args.push("--destinations", "svc-1,svc-2,svc-3");
  else args.push("--whole-mesh");
  const child = spawn(process.execPath, [remora, ...args], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const ready = await waitForLog(child, "sidecar ready", "remora proxy");
    const admin = ready.admin as string;
    for (const start = Date.now(); ; ) {
      const body = await get(admin, "/ready").catch(() => "");
      if (body.startsWith("ready") || (await fetch(`http://${admin}/ready`).then((r) => r.status === 200, () => false))) break;
      if (Date.now() - start > 60_000) throw new Error("sidecar not ready within 60 s");
      await new Promise((r) => setTimeout(r, 100));
    }
    await new Promise((r) => setTimeout(r, 3000)); // let start-up garbage settle
    const config = await get(admin, "/config");
    const samples = [];
    for (let i = 0; i < 5; i++, await new Promise((r) => setTimeout(r, 500))) samples.push(await rssKib(child.pid!));
    return { rss_mib: Math.min(...samples) / 1024, config_bytes: Buffer.byteLength(config) };
  } finally {
    await stop(child);
  }
}

interface Reply {
  status: number;
  body: string;
}

function post(agent: Agent, address: string, path: string, body: unknown, method = "POST"): Promise<Reply> {
  const [host, port] = address.split(":");
  return new Promise((ok, fail) => {
    const req = request({ agent, host, port: Number(port), method, path, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => (text += c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", fail);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function svidContext(c: Control, service: string, keys: CryptoKeyPair): Promise<SecureContext> {
  const cert = await issueSvid({ ca: c.ca, spiffeId: `spiffe://${TD}/ns/default/sa/${service}`, publicKey: keys.publicKey, ttlMs: 3_600_000, now: Date.now() });
  return createSecureContext({ cert, key: await exportPrivateKeyPem(keys.privateKey), ca: c.rootPem });
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] ?? NaN;
};

/** (b): K watchers on a mesh of `services`; `changes` endpoint changes at `rate` per second. */
async function fanout(services: number, changes: number, rate: number) {
  const c = await meshOf(services);
  const agents: Agent[] = [];
  let stopping = false;
  try {
    const keys = await generateKeyPair();
    const agentFor = (ctx: SecureContext) => {
      const a = new Agent({ keepAlive: true, maxSockets: 1, maxCachedSessions: 0, secureContext: ctx, checkServerIdentity: () => undefined });
      agents.push(a);
      return a;
    };
    const clientCtx = await svidContext(c, "bench-client", keys);
    // Watcher i calls 3 distinct services among the first HOT, the same at every mesh size.
    const watchers = Array.from({ length: K }, (_, i) => ({
      proxy: `watcher-${i}`,
      agent: agentFor(clientCtx),
      held: Object.fromEntries([0, 1, 2].map((k) => [`svc-${(i * 7 + k * 31) % HOT}`, ""])) as Record<string, string>,
      authorization: "",
    }));
    const watchersOf = new Map<string, number>();
    for (const w of watchers) for (const s of Object.keys(w.held)) watchersOf.set(s, (watchersOf.get(s) ?? 0) + 1);

    const deliveries = new Map<string, { t0: number; got: number[]; bytes: number }>(); // key: service@version-change id
    let current: { service: string; key: string } | undefined;
    let connected = 0;
    let allConnected!: () => void;
    const connectedAll = new Promise<void>((ok) => (allConnected = ok));
    const loop = async (w: (typeof watchers)[number], onFirst: () => void) => {
      let first = true;
      while (!stopping) {
        const r = await post(w.agent, c.address, "/v2/config", { proxy: w.proxy, wait: 60, destinations: w.held, authorization: w.authorization }).catch((e) => {
          if (!stopping) throw e;
          return { status: 0, body: "" };
        });
        const t1 = performance.now();
        if (first) {
          first = false;
          onFirst();
          if (++connected === K) allConnected();
        }
        if (r.status !== 200) continue;
        const a = JSON.parse(r.body) as { destinations: Record<string, { version: string }>; authorization?: { version: string } };
        for (const [name, d] of Object.entries(a.destinations)) {
          w.held[name] = d.version;
          if (current?.service === name) {
            const rec = deliveries.get(current.key)!;
            rec.got.push(t1 - rec.t0);
            rec.bytes += Buffer.byteLength(r.body);
          }
        }
        if (a.authorization) w.authorization = a.authorization.version;
      }
    };
    const SETUP = 100;
    let next = 0;
    const setup = performance.now();
    const running: Promise<void>[] = [];
    // Start the watchers SETUP at a time (TLS handshakes), then keep them all polling.
    await Promise.all(
      Array.from({ length: SETUP }, async () => {
        for (let i; (i = next++) < K; ) {
          await new Promise<void>((answered) => running.push(loop(watchers[i]!, answered)));
        }
      }),
    );
    await connectedAll;
    const setupMs = performance.now() - setup;
    await new Promise((r) => setTimeout(r, 2000));

    // Churn: on a hot service, an endpoint joins (PUT) or leaves (DELETE), through the API, as that service.
    const churnAgents = new Map<string, Agent>();
    const saved: number[] = [];
    const samples: { p99: number; max: number; watchers: number; reached: number; bytes: number }[] = [];
    for (let n = 0; n < changes; n++) {
      // Pairs on one service: an endpoint joins, then leaves.
      const s = (Math.floor(n / 2) * 13) % HOT;
      const service = `svc-${s}`;
      let agent = churnAgents.get(service);
      if (!agent) churnAgents.set(service, (agent = agentFor(await svidContext(c, service, keys))));
      const expected = watchersOf.get(service) ?? 0;
      const key = `${n}`;
      deliveries.set(key, { t0: performance.now(), got: [], bytes: 0 });
      current = { service, key };
      const proxy = `${service}-churn`;
      const r = n % 2 === 0
        ? await post(agent, c.address, `/v1/proxies/${proxy}`, { service, address: `10.255.${s}.${n % 250}:15006` }, "PUT")
        : await post(agent, c.address, `/v1/proxies/${proxy}`, undefined, "DELETE");
      if (r.status !== 200) throw new Error(`churn ${proxy}: HTTP ${r.status} ${r.body}`);
      const rec = deliveries.get(key)!;
      // The registry call answers once the state is saved: the store's share of the delivery time.
      saved.push(performance.now() - rec.t0);
      for (const until = performance.now() + 10_000; rec.got.length < expected && performance.now() < until; ) await new Promise((res) => setTimeout(res, 2));
      samples.push({ p99: pct(rec.got, 0.99), max: Math.max(0, ...rec.got), watchers: expected, reached: rec.got.length, bytes: rec.bytes });
      await new Promise((res) => setTimeout(res, 1000 / rate));
    }
    current = undefined;
    const all = [...deliveries.values()].flatMap((d) => d.got);
    const reached = samples.reduce((a, s) => a + s.reached, 0);
    const expected = samples.reduce((a, s) => a + s.watchers, 0);
    const bytes = samples.reduce((a, s) => a + s.bytes, 0);
    return {
      services,
      endpoints_per_service: M,
      watchers: K,
      changes,
      setup_ms: setupMs,
      deliveries: reached,
      expected_deliveries: expected,
      change_saved_p50_ms: pct(saved, 0.5),
      change_saved_p99_ms: pct(saved, 0.99),
      delivery_p50_ms: pct(all, 0.5),
      delivery_p99_ms: pct(all, 0.99),
      delivery_max_ms: Math.max(...all),
      bytes_per_change: bytes / changes,
      bytes_per_delivery: bytes / Math.max(1, reached),
    };
  } finally {
    stopping = true;
    for (const a of agents) a.destroy();
    await close(c);
  }
}

const out: Record<string, unknown> = { date: new Date().toISOString(), runtime: `node ${process.versions.node}`, cores: cpus().length };
const skip = new Set(values.skip.split(","));
if (!skip.has("a")) {
  const footprint = [];
  for (const n of [Number(values.small), Number(values.large)]) {
    const c = await meshOf(n);
    try {
      const onDemand = await sidecarFootprint(c, true);
      const whole = await sidecarFootprint(c, false);
      footprint.push({ services: n, on_demand: onDemand, whole_mesh: whole });
      console.log(`mesh ${n} services x ${M}: on-demand sidecar RSS ${onDemand.rss_mib.toFixed(1)} MiB, config ${onDemand.config_bytes} B; whole-mesh RSS ${whole.rss_mib.toFixed(1)} MiB, config ${whole.config_bytes} B`);
    } finally {
      await close(c);
    }
  }
  out.footprint = footprint;
}
if (!skip.has("b")) {
  const rows = [];
  for (const n of values.fanout.split(",").map(Number)) {
    const r = await fanout(n, Number(values.changes), Number(values.rate));
    rows.push(r);
    console.log(`fan-out ${n} services, ${K} watchers: ${r.deliveries}/${r.expected_deliveries} delivered, p50 ${r.delivery_p50_ms.toFixed(1)} p99 ${r.delivery_p99_ms.toFixed(1)} max ${r.delivery_max_ms.toFixed(1)} ms, ${Math.round(r.bytes_per_change)} B per change, ${Math.round(r.bytes_per_delivery)} B per delivery; change saved (PUT/DELETE answered) p50 ${r.change_saved_p50_ms.toFixed(1)} p99 ${r.change_saved_p99_ms.toFixed(1)} ms`);
  }
  out.fanout = rows;
}
const file = join(root, "bench/results", `${String(out.date).slice(0, 10)}-scale.json`);
await writeFile(file, JSON.stringify(out, null, 2) + "\n");
console.log(`wrote ${file}`);
