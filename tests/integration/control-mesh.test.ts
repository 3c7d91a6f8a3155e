// The reference scenario with the control plane: every sidecar enrolled by join token,
// endpoints from the registry, policy from `remora apply`; then policy changes reach the
// sidecars in place, with no process restarted.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { http, json, remora, startApp, type Proxy } from "./support/processes.ts";
import { startTestMesh, untilConfig, type TestMesh } from "./support/mesh.ts";

let mesh: TestMesh;

const policy = (numRetries: number, tls: string) => `route:
  destination: payments
  load_balancer: round_robin
  retry_policy:
    retry_on: connect-failure,5xx,reset
    num_retries: ${numRetries}
    per_try_timeout: 250ms
  tls:
    mode: ${tls}
outlier_detection:
  consecutive_5xx: 5
  base_ejection_time: 30s
`;

type Config = { version: string; policies: { route: { retry_policy: { num_retries: number }; tls: { mode: string } } }[]; endpoints: Record<string, unknown[]> };


before(async () => {
  mesh = await startTestMesh("remora-mesh-");
});

after(() => mesh.close());

test("reference scenario through the control plane, then retries and TLS mode changed in place", async () => {
  await mesh.apply("payments.yaml", policy(2, "ISTIO_MUTUAL"));
  const b1app = await startApp("B1", "reset");
  const b2app = await startApp("B2");
  mesh.defer(() => b1app.close());
  mesh.defer(() => b2app.close());
  const b1 = await mesh.sidecar("payments", { app: b1app.address });
  const b2 = await mesh.sidecar("payments", { app: b2app.address });
  // On-demand config: orders declares payments, so its /config holds it before the first call.
  const orders = await mesh.sidecar("orders", { args: ["--destinations", "payments"] });
  const pids = [b1, b2, orders].map((p) => p.child.pid);

  // Endpoints from the registry reach the caller (well within a second in practice).
  await untilConfig<Config>(orders, (c) => (c.endpoints.payments?.length ?? 0) === 2 && c.policies.length === 1, 5000);

  for (let i = 0; i < 12; i++) {
    const r = await http(orders.outbound, "http://payments/charge", { method: "POST", body: "{}" });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, "B2");
  }
  assert.equal(b1app.hits, 5, "B1 is ejected after 5 consecutive failures and gets nothing after");
  assert.match(String(b2app.lastHeaders?.["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders$/);

  // num_retries 2 -> 0 reaches the sidecar in place within 2 s.
  const before = (await json<Config>(orders.admin, "/config")).version;
  await mesh.apply("payments-0.yaml", policy(0, "ISTIO_MUTUAL"));
  const took = await untilConfig<Config>(orders, (c) => c.version !== before && c.policies[0]?.route.retry_policy.num_retries === 0, 2000);
  assert.ok(took <= 2000);

  // TLS mode DISABLE: the caller now sends plaintext, which B's STRICT inbound refuses:
  // the behaviour changes with the config, and back again.
  await mesh.apply("payments-plain.yaml", policy(0, "DISABLE"));
  await untilConfig<Config>(orders, (c) => c.policies[0]?.route.tls.mode === "DISABLE", 2000);
  const plain = await http(orders.outbound, "http://payments/charge");
  assert.equal(plain.status, 503, plain.body);
  assert.equal(b2app.hits, 12 + 0, "a plaintext request never reaches the app behind a STRICT sidecar");
  await mesh.apply("payments-mtls.yaml", policy(2, "ISTIO_MUTUAL"));
  await untilConfig<Config>(orders, (c) => c.policies[0]?.route.tls.mode === "MUTUAL", 2000);
  assert.equal((await http(orders.outbound, "http://payments/charge")).status, 200);

  // No process was restarted, and every proxy ACKed the current config.
  assert.deepEqual([b1, b2, orders].map((p) => p.child.pid), pids);
  assert.ok([b1, b2, orders].every((p) => p.child.exitCode === null));
  const got = await remora(["get", "proxies", "--json", ...mesh.admin()]);
  assert.equal(got.code, 0, got.stderr);
  const proxies = JSON.parse(got.stdout) as { proxy: string; service: string; status: string; config_mode: string; destinations: number }[];
  assert.equal(proxies.length, 3);
  assert.deepEqual(proxies.map((p) => [p.service, p.config_mode, p.destinations]).sort(), [["orders", "on-demand", 1], ["payments", "on-demand", 0], ["payments", "on-demand", 0]]);
  const deadline = Date.now() + 3000;
  let statuses = proxies.map((p) => p.status);
  while (statuses.some((s) => s !== "ACK") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const again = await remora(["get", "proxies", "--json", ...mesh.admin()]);
    statuses = (JSON.parse(again.stdout) as { status: string }[]).map((p) => p.status);
  }
  assert.deepEqual(statuses, ["ACK", "ACK", "ACK"]);

  // The control plane killed with kill -9 mid-traffic: the data plane keeps serving with
  // its last good config and certificates; restarted on the same DIR, it resumes.
  const traffic = (async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await http(orders.outbound, "http://payments/charge")).status);
    return statuses;
  })();
  await mesh.control.kill9();
  assert.deepEqual(new Set(await traffic), new Set([200]));
  await mesh.startControlAgain();
  const after = await remora(["get", "policies", "--json", ...mesh.admin()]);
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stdout, /"destination": "payments"/);
});
