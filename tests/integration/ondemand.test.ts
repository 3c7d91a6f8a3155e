// On-demand config with real processes: a sidecar that declares nothing calls payments; the
// first call waits for discovery and succeeds, a change to another service sends it nothing,
// a change to payments reaches it, and an unknown name is a 503 naming it.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { http, json, remora, startApp, type Proxy } from "./support/processes.ts";
import { startTestMesh, type TestMesh } from "./support/mesh.ts";

let mesh: TestMesh;

type Config = { version: string; mode: string; destinations_held: number; policies: { route: { destination: string; retry_policy?: { num_retries: number } } }[]; endpoints: Record<string, unknown[]> };

async function until<T>(what: string, get: () => Promise<T | undefined>, ok: (v: T) => boolean, limitMs = 5000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined && ok(v)) return v;
    if (Date.now() - start > limitMs) assert.fail(`${what}: not within ${limitMs} ms; last ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const applied = (p: Proxy) => p.logs.filter((l) => l.msg === "config applied");

before(async () => {
  mesh = await startTestMesh("remora-ondemand-");
});

after(() => mesh.close());

test("a sidecar with no declared destinations discovers payments on the first call and gets only its changes", async () => {
  const payApp = await startApp("payments");
  const ledgerApp = await startApp("ledger");
  mesh.defer(() => payApp.close());
  mesh.defer(() => ledgerApp.close());
  const payments = await mesh.sidecar("payments", { app: payApp.address, args: ["--whole-mesh"] }); // whole-mesh (v1) watcher: our view of the mesh
  await mesh.sidecar("ledger", { app: ledgerApp.address });
  const orders = await mesh.sidecar("orders", { args: ["--on-demand"] }); // the default; the flag is kept as a no-op
  await until("orders ready", () => http(orders.admin, "/ready"), (r) => r.status === 200);
  await until("payments registered", () => json<Config>(payments.admin, "/config"), (c) => (c.endpoints.payments?.length ?? 0) === 1 && (c.endpoints.ledger?.length ?? 0) === 1);

  const first = await http(orders.outbound, "http://payments/charge", { method: "POST", body: "{}" });
  assert.equal(first.status, 200, first.body);
  assert.equal(first.body, "payments");
  const held = await json<Config>(orders.admin, "/config");
  assert.deepEqual(Object.keys(held.endpoints), ["payments"], "only what the app called");

  // A change to ledger (a second endpoint) reaches the whole-mesh watcher but not orders.
  const before = applied(orders).length;
  const ledger2App = await startApp("ledger-2");
  mesh.defer(() => ledger2App.close());
  await mesh.sidecar("ledger", { app: ledger2App.address });
  await until("ledger-2 registered", () => json<Config>(payments.admin, "/config"), (c) => (c.endpoints.ledger?.length ?? 0) === 2);
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(applied(orders).length, before, `orders got an update for a service it does not call: ${JSON.stringify(applied(orders).slice(before))}`);

  // Each sidecar says how it gets config; the control plane counts orders in sync although
  // it never received the ledger change: it holds the latest of what it watches.
  assert.deepEqual([held.mode, held.destinations_held], ["on-demand", 1]);
  assert.equal((await json<Config>(payments.admin, "/config")).mode, "whole-mesh");
  type Row = { proxy: string; service: string; status: string; config_mode: string; destinations: number };
  const getProxies = async () => {
    const r = await remora(["get", "proxies", "--json", ...mesh.admin()]);
    return r.code === 0 ? (JSON.parse(r.stdout) as Row[]) : undefined;
  };
  const rows = await until("every proxy in sync", getProxies, (rs) => rs.length === 4 && rs.every((r) => r.status === "ACK"), 10_000);
  const mode = (service: string) => rows.filter((r) => r.service === service).map((r) => `${r.config_mode} ${r.destinations}`);
  assert.deepEqual(mode("orders"), ["on-demand 1"]);
  assert.deepEqual(mode("ledger"), ["on-demand 0", "on-demand 0"], "on-demand is the default (no flag)");
  assert.deepEqual(mode("payments"), ["whole-mesh 3"]);
  const table = await remora(["get", "proxies", ...mesh.admin()]);
  assert.match(table.stdout, /^PROXY .* MODE +DESTINATIONS +STATUS/m);
  assert.match(table.stdout, /^orders-\S+ +orders .* on-demand +1 +ACK/m);

  // A change to payments (its policy) reaches orders, carrying payments only.
  await mesh.apply("payments.yaml", "route:\n  destination: payments\n  retry_policy:\n    num_retries: 0\n");
  await until("payments' policy at orders", () => json<Config>(orders.admin, "/config"), (c) => c.policies.some((p) => p.route.destination === "payments" && p.route.retry_policy?.num_retries === 0), 3000);
  const last = applied(orders).at(-1);
  assert.deepEqual(last?.changed, ["payments"]);
  assert.equal((await http(orders.outbound, "http://payments/charge")).status, 200);

  // A name the control plane does not know: 503 naming it, after the control plane said so.
  const none = await http(orders.outbound, "http://nosuch/x");
  assert.equal(none.status, 503);
  assert.match(none.body, /no such service "nosuch"/);
});
