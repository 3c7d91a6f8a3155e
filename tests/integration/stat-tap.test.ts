// `remora stat` and `remora tap` against a real control plane and enrolled sidecars on
// loopback: traffic from orders to payments shows up as an edge with its success rate,
// and tap prints requests with the orders sidecar's SPIFFE ID as the caller.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { http, json, REMORA, remora, startApp, type Proxy } from "./support/processes.ts";
import { startTestMesh, untilConfig, type TestMesh } from "./support/mesh.ts";

const ORDERS_ID = "spiffe://cluster.local/ns/default/sa/orders";
let mesh: TestMesh;
let orders: Proxy;
const controlArgs = () => mesh.admin();

async function traffic(n: number): Promise<void> {
  for (let i = 0; i < n; i++) assert.equal((await http(orders.outbound, "http://payments/charge", { method: "POST", body: "{}" })).status, 200);
}

before(async () => {
  mesh = await startTestMesh("remora-stat-");
  await mesh.apply("payments.yaml", "route:\n  destination: payments\n  tls:\n    mode: ISTIO_MUTUAL\n");
  const app = await startApp("payments");
  mesh.defer(() => app.close());
  await mesh.sidecar("payments", { app: app.address });
  orders = await mesh.sidecar("orders", { args: ["--destinations", "payments"] }); // held before the first call
  await untilConfig<{ endpoints: Record<string, unknown[]> }>(orders, (c) => (c.endpoints.payments?.length ?? 0) >= 1, 10_000);
});

after(() => mesh.close());

type Stats = {
  services: { name: string; proxies: number; meshed: number; requests: number; success: number | null; mtls: { share: number | null } }[];
  edges: { from: string; to: string; requests: number; rps: number | null; success: number | null; latencyMs: { p50: number | null; p99: number | null } }[];
};

/** `remora stat --json` until `ok` holds of its answer; fails the test past `limitMs`. */
async function untilStats(ok: (s: Stats) => boolean, limitMs: number): Promise<{ stats: Stats; stdout: string }> {
  const start = Date.now();
  for (;;) {
    const r = await remora(["stat", "--json", "--window", "1m", ...controlArgs()]);
    assert.equal(r.code, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as Stats;
    if (ok(stats)) return { stats, stdout: r.stdout };
    if (Date.now() - start > limitMs) assert.fail(`condition not met within ${limitMs} ms: ${r.stdout}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test("remora stat shows the edge orders -> payments with its success rate, as a table and as JSON", async () => {
  // The control plane scrapes a sidecar when it registers, asynchronously: a stat call
  // scrapes both now, so the baseline is surely taken before the traffic (on a loaded
  // machine the registration scrape could land after it and count nothing).
  await untilStats((s) => s.services.filter((x) => x.proxies > 0).length >= 2, 10_000);
  await traffic(20);
  // A scrape is reused for 1 s (collector.ts FRESH_MS), and a periodic one may have landed
  // mid-traffic: asked again until a scrape taken after all 20 calls is in.
  const { stats, stdout } = await untilStats((s) => s.edges.some((e) => e.from === "orders" && e.to === "payments" && e.requests >= 20), 10_000);
  const edge = stats.edges.find((e) => e.from === "orders" && e.to === "payments");
  assert.ok(edge, `no orders -> payments edge in ${stdout}`);
  assert.equal(edge.requests, 20);
  assert.equal(edge.success, 1);
  assert.ok(edge.rps !== null && edge.rps > 0);
  assert.ok(edge.latencyMs.p50 !== null && edge.latencyMs.p50 > 0 && edge.latencyMs.p99! >= edge.latencyMs.p50);
  const payments = stats.services.find((s) => s.name === "payments")!;
  assert.deepEqual([payments.proxies, payments.meshed, payments.requests, payments.success, payments.mtls.share], [1, 1, 20, 1, 1]);

  const t = await remora(["stat", ...controlArgs()]);
  assert.equal(t.code, 0, t.stderr);
  const lines = t.stdout.split("\n");
  assert.match(lines[0]!, /^NAME\s+MESHED\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99\s+RETRIES\s+EJECTED\s+MTLS$/);
  assert.match(t.stdout, /^payments\s+1\/1\s+100\.00%\s/m);
  assert.match(t.stdout, /^EDGES$/m);
  assert.match(t.stdout, /^orders\s+payments\s+100\.00%\s+\d+\.\d\s+\S+ms/m);

  const one = await remora(["stat", "payments", ...controlArgs()]);
  assert.equal(one.code, 0, one.stderr);
  assert.doesNotMatch(one.stdout, /^orders\s+\d\/\d/m, "only the named service's row");
  const none = await remora(["stat", "nosuch", ...controlArgs()]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no service or proxy named "nosuch" is registered/);
});

test("remora tap payments --max 3 prints three requests with the caller's SPIFFE ID", async () => {
  const child = spawn(process.execPath, [REMORA, "tap", "payments", "--max", "3", ...controlArgs()], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c) => (stdout += c));
  child.stderr.on("data", (c) => (stderr += c));
  const exited = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  const kill = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const ready = Date.now() + 20_000;
    while (!stderr.includes("tapping payments") && child.exitCode === null && Date.now() < ready) await new Promise((r) => setTimeout(r, 50));
    assert.match(stderr, /tapping payments through 2 proxies/);
    // Keep calling until tap has seen enough and exited on its own.
    while (child.exitCode === null && Date.now() < ready) await traffic(1);
    assert.equal(await exited, 0, stderr);
  } finally {
    clearTimeout(kill);
    child.kill("SIGKILL");
  }
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 3, stdout);
  for (const line of lines) {
    assert.match(line, /^\d\d:\d\d:\d\d\.\d{3}  spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders -> payments  POST \/charge  200  \S+ms  \((inbound at payments|outbound at orders)-/);
    assert.ok(line.includes(ORDERS_ID));
  }
});
