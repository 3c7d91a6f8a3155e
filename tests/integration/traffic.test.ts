// Traffic management through the control plane on loopback: a canary split measured over
// 2,000 requests, moved live with no failed request, injected aborts hidden by the seed's
// retries, and a mirrored destination receiving copies.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { http, json, remora, startApp, type Proxy } from "./support/processes.ts";
import { startTestMesh, untilConfig, type TestMesh } from "./support/mesh.ts";

let mesh: TestMesh;

const SEED_ROUTE = `route:
  destination: payments
  load_balancer: round_robin
  retry_policy:
    retry_on: connect-failure,5xx,reset
    num_retries: 2
    per_try_timeout: 250ms
  tls:
    mode: ISTIO_MUTUAL`;

const SUBSETS = `subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}`;

const canary = (w1: number, w2: number) => `${SEED_ROUTE}
  rules:
    - name: canary
      split:
        - {subset: v1, weight: ${w1}}
        - {subset: v2, weight: ${w2}}
${SUBSETS}
`;

const chaos = `${SEED_ROUTE}
  rules:
    - name: chaos
      fault:
        abort: {status: 503, percent: 50}
      mirror: {destination: payments-shadow, percent: 100}
outlier_detection:
  consecutive_5xx: 5
  base_ejection_time: 30s
`;

// Host names the service as an app's own request would (Bun's server reads the authority
// from Host, not from an absolute-form target).
const CHARGE = { method: "POST", body: "{}", headers: { host: "payments" } };

type Config = { version: string; policies: { route: { destination: string; rules?: { name: string; split?: { weight: number }[] }[] } }[]; endpoints: Record<string, { labels?: Record<string, string> }[]> };


/** Sends `n` requests through `orders`; returns the percentage answered by v2, asserting every one succeeded. */
async function v2Share(orders: Proxy, n: number): Promise<number> {
  let v2 = 0;
  for (let i = 0; i < n; i++) {
    const r = await http(orders.outbound, "http://payments/charge", CHARGE);
    assert.equal(r.status, 200, r.body);
    if (r.body === "V2") v2++;
  }
  return (v2 / n) * 100;
}

function metric(text: string, line: RegExp): number {
  const m = text.match(line);
  return m ? Number(m[1]) : 0;
}

before(async () => {
  mesh = await startTestMesh("remora-traffic-");
});

after(() => mesh.close());

test("canary split, live weight change, injected aborts hidden by retries, mirroring", async () => {
  const v1app = await startApp("V1");
  const v2app = await startApp("V2");
  const shadowApp = await startApp("SHADOW");
  for (const app of [v1app, v2app, shadowApp]) mesh.defer(() => app.close());
  await mesh.apply("canary.yaml", canary(90, 10));
  await mesh.sidecar("payments", { app: v1app.address, args: ["--label", "version=v1"] });
  await mesh.sidecar("payments", { app: v2app.address, args: ["--label", "version=v2"] });
  await mesh.sidecar("payments-shadow", { app: shadowApp.address });
  // On-demand config: payments declared; payments-shadow comes with the policy that mirrors to it.
  const orders = await mesh.sidecar("orders", { args: ["--destinations", "payments"] });
  await untilConfig<Config>(
    orders,
    (c) => c.endpoints.payments?.length === 2 && c.endpoints.payments.every((e) => e.labels?.version !== undefined) && c.policies.length === 1,
    10_000,
  );

  // 90/10 over 2,000 requests lands within ±2 points.
  const share = await v2Share(orders, 2_000);
  assert.ok(Math.abs(share - 10) <= 2, `v2 got ${share}% of 2,000 requests`);

  // The route table, from the control plane and from the caller's admin server.
  const got = await remora(["get", "routes", "payments", ...mesh.admin()]);
  assert.equal(got.code, 0, got.stderr);
  assert.match(got.stdout, /^canary\s+\*\s+v1 90% \(1 endpoint\), v2 10% \(1 endpoint\)\s+15s\s+2 on connect-failure,5xx,reset per try 250ms/m);
  const rows = await json<{ destination: string; rule: string }[]>(orders.admin, "/routes");
  assert.ok(rows.some((r) => r.destination === "payments" && r.rule === "canary"));

  // Moved to 50/50 live, under traffic: in force within 2 s, and no request fails.
  let stop = false;
  const during = (async () => {
    const statuses: number[] = [];
    while (!stop) statuses.push((await http(orders.outbound, "http://payments/charge", CHARGE)).status);
    return statuses;
  })();
  const before = (await json<Config>(orders.admin, "/config")).version;
  await mesh.apply("canary-50.yaml", canary(50, 50));
  const took = await untilConfig<Config>(orders, (c) => c.version !== before && c.policies[0]?.route.rules?.[0]?.split?.[0]?.weight === 50, 2_000);
  assert.ok(took <= 2_000, `took ${took} ms`);
  stop = true;
  const statuses = await during;
  assert.ok(statuses.length > 0);
  assert.deepEqual(new Set(statuses), new Set([200]), "no failed request while the weights moved");
  const after50 = await v2Share(orders, 1_000);
  assert.ok(Math.abs(after50 - 50) <= 5, `v2 got ${after50}% after the move`);

  // 50% injected aborts with the seed's retry policy: every request succeeds, while the
  // metrics show the injected failures and the retries that hid them.
  assert.equal((await json<Config>(orders.admin, "/config")).endpoints["payments-shadow"], undefined, "not watched before a policy mirrors to it");
  await mesh.apply("chaos.yaml", chaos);
  await untilConfig<Config>(orders, (c) => c.policies.find((p) => p.route.destination === "payments")?.route.rules?.[0]?.name === "chaos" && (c.endpoints["payments-shadow"]?.length ?? 0) === 1, 2_000);
  const metricsBefore = await http(orders.admin, "/metrics");
  const retriesBefore = metric(metricsBefore.body, /^remora_retries_total\{destination="payments"\} (\d+)/m);
  const shadowBefore = shadowApp.hits;
  for (let i = 0; i < 200; i++) {
    const r = await http(orders.outbound, "http://payments/charge", CHARGE);
    assert.equal(r.status, 200, r.body);
    assert.notEqual(r.body, "SHADOW");
  }
  const text = (await http(orders.admin, "/metrics")).body;
  const aborts = metric(text, /^remora_faults_injected_total\{destination="payments",rule="chaos",kind="abort"\} (\d+)/m);
  const retries = metric(text, /^remora_retries_total\{destination="payments"\} (\d+)/m) - retriesBefore;
  assert.ok(aborts >= 60 && aborts <= 140, `${aborts} injected aborts of 200`);
  assert.ok(retries >= aborts, `${retries} retries for ${aborts} aborts`);

  // The mirrored destination receives the copies (fire and forget: they may land a little
  // later, and a copy is never retried, so a rare loopback reset loses one: it is counted).
  const counts = async () => {
    const t = (await http(orders.admin, "/metrics")).body;
    const at = (result: string) => metric(t, new RegExp(`^remora_mirrored_requests_total\\{destination="payments",mirror="payments-shadow",result="${result}"\\} (\\d+)`, "m"));
    return { success: at("success"), failure: at("failure") };
  };
  const deadline = Date.now() + 10_000;
  let c = await counts();
  while (c.success + c.failure < 200 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    c = await counts();
  }
  assert.equal(c.success + c.failure, 200, "every copy is accounted for");
  assert.ok(c.failure <= 4, `${c.failure} copies failed`);
  assert.ok(shadowApp.hits - shadowBefore >= c.success, `the shadow app got ${shadowApp.hits - shadowBefore} copies, ${c.success} answered`);
});
