// The reference scenario between real sidecar processes on loopback: orders' sidecar,
// two payments sidecars, B1's app resetting connections. Certificates come from
// `remora certs`; every port is ephemeral.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { http, json, remora, startApp, startProxy, startProxyWith, type Proxy, type TestApp } from "./support/processes.ts";

const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";

let dir: string;
const cleanup: (() => Promise<void>)[] = [];

async function config(name: string, body: string): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, body);
  return path;
}

function sidecarConfig(service: string, extra: string): string {
  return `identity: { cert: certs/${service}.pem, key: certs/${service}-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
${extra}`;
}

// The seed's policy with short ejection times so the return is observed within the test.
const policy = `
  - route:
      destination: payments
      load_balancer: round_robin
      retry_policy:
        retry_on: connect-failure,5xx,reset
        num_retries: 2
        per_try_timeout: 250ms
      tls:
        mode: ISTIO_MUTUAL
    outlier_detection:
      consecutive_5xx: 5
      base_ejection_time: 2s
      interval: 200ms`;

async function payments(name: string, app: TestApp): Promise<Proxy> {
  const p = await startProxy(await config(name, sidecarConfig("payments", `inbound: { listen: "127.0.0.1:0", app: "${app.address}", mode: STRICT }`)));
  cleanup.push(() => p.stop());
  return p;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-it-"));
  const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "payments", "intruder"]);
  assert.equal(r.code, 0, r.stderr);
  const other = await remora(["certs", "--out", join(dir, "other"), "--trust-domain", "other.local", "orders"]);
  assert.equal(other.code, 0, other.stderr);
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe("reference scenario", () => {
  let b1app: TestApp, b2app: TestApp, b1: Proxy, b2: Proxy, orders: Proxy;

  before(async () => {
    b1app = await startApp("B1", "reset");
    b2app = await startApp("B2");
    cleanup.push(() => b1app.close(), () => b2app.close());
    b1 = await payments("b1", b1app);
    b2 = await payments("b2", b2app);
    orders = await startProxy(
      await config(
        "orders",
        sidecarConfig(
          "orders",
          `endpoints:
  payments:
    - { address: "${b1.inbound}", identity: ${PAYMENTS} }
    - { address: "${b2.inbound}", identity: ${PAYMENTS} }
policies:${policy}`,
        ),
      ),
    );
    cleanup.push(() => orders.stop());
  });

  test("every call gets 200 from B2 while B1 resets; B1 is ejected, gets nothing, then returns", async () => {
    for (let i = 0; i < 12; i++) {
      const r = await http(orders.outbound, "http://payments/charge", { method: "POST", body: `{"n":${i}}` });
      assert.equal(r.status, 200, `call ${i}: ${r.body}`);
      assert.equal(r.body, "B2");
    }
    // round robin sends every other first attempt to B1: 5 consecutive failures eject it.
    assert.equal(b1app.hits, 5);
    type Ep = { destination: string; endpoints: { address: string; state: string }[] }[];
    const view = await json<Ep>(orders.admin, "/endpoints");
    assert.equal(view[0]!.endpoints.find((e) => e.address === b1.inbound)!.state, "ejected");

    // B2's app saw the caller's verified identity, asserted by B2's sidecar.
    assert.match(String(b2app.lastHeaders?.["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders$/);
    assert.match(String(b2app.lastHeaders?.["traceparent"]), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);

    // While ejected, B1 receives nothing, even after it heals.
    b1app.mode = "ok";
    for (let i = 0; i < 4; i++) assert.equal((await http(orders.outbound, "http://payments/charge")).body, "B2");
    assert.equal(b1app.hits, 5);

    // After base_ejection_time (2 s) B1 returns at the next sweep and serves again.
    const deadline = Date.now() + 8000;
    let seenB1 = false;
    while (!seenB1 && Date.now() < deadline) {
      const r = await http(orders.outbound, "http://payments/charge");
      assert.equal(r.status, 200);
      seenB1 = r.body === "B1";
      if (!seenB1) await new Promise((ok) => setTimeout(ok, 100));
    }
    assert.ok(seenB1, "B1 never returned after its ejection time");
  });

  test("origin-form with a Host header routes too; an unknown host is 404 naming it", async () => {
    const r = await http(orders.outbound, "/charge", { headers: { host: "payments.default.svc.cluster.local:80" } });
    assert.equal(r.status, 200);
    const u = await http(orders.outbound, "/charge", { headers: { host: "paymnts" } });
    assert.equal(u.status, 404);
    assert.match(u.body, /paymnts/);
  });

  test("metrics and config are served on the admin port", async () => {
    const m = await http(orders.admin, "/metrics");
    assert.match(m.body, /remora_requests_total\{direction="outbound",destination="payments",code_class="2xx"\} \d+/);
    assert.match(m.body, /remora_retries_total\{destination="payments"\} [1-9]/);
    assert.match(m.body, /remora_outlier_ejections_total\{/);
    assert.match(m.body, /remora_request_duration_seconds_bucket\{/);
    const c = await json<{ identity: { id: string }; policies: { route: { retry_policy: { num_retries: number } } }[] }>(orders.admin, "/config");
    assert.equal(c.identity.id, "spiffe://cluster.local/ns/default/sa/orders");
    assert.equal(c.policies[0]!.route.retry_policy.num_retries, 2);
    assert.equal((await http(orders.admin, "/ready")).status, 200);
  });
});

/** Polls `check` every 25 ms until it holds or `ms` pass. */
async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  for (const end = Date.now() + ms; !check(); ) {
    if (Date.now() > end) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("access log switch", () => {
  test("access_log: false and --access-log off write no access lines; turning access_log on in the file applies at the next reload", async () => {
    const app = await startApp("P");
    cleanup.push(() => app.close());
    const pay = await startProxyWith(["--config", await config("pay-quiet", sidecarConfig("payments", `inbound: { listen: "127.0.0.1:0", app: "${app.address}", mode: STRICT }`)), "--access-log", "off"]);
    cleanup.push(() => pay.stop());
    const ordersBody = (on: boolean) => sidecarConfig("orders", `access_log: ${on}\nendpoints:\n  payments:\n    - { address: "${pay.inbound}", identity: ${PAYMENTS} }\n`);
    const ordersPath = await config("orders-quiet", ordersBody(false));
    const orders = await startProxyWith(["--config", ordersPath, "--watch-interval", "100ms"]);
    cleanup.push(() => orders.stop());
    const accessLines = (p: Proxy) => p.logs.filter((l) => l.msg === "access").length;

    for (let i = 0; i < 3; i++) assert.equal((await http(orders.outbound, "http://payments/charge")).status, 200);
    // Past the 50 ms batch an access line would have waited in.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(accessLines(orders), 0);
    assert.equal(accessLines(pay), 0);

    const applied = orders.logs.filter((l) => l.msg === "config applied").length;
    await writeFile(ordersPath, ordersBody(true));
    await until("orders reloads its config", () => orders.logs.filter((l) => l.msg === "config applied").length > applied);
    assert.equal((await http(orders.outbound, "http://payments/charge")).status, 200);
    await until("an access line from orders", () => accessLines(orders) === 1);
    const line = orders.logs.find((l) => l.msg === "access")!;
    assert.equal(line.direction, "outbound");
    assert.equal(line.status, 200);
    // The flag still wins on the other side.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(accessLines(pay), 0);
  });
});

describe("peer identity", () => {
  test("a caller without a certificate, from another trust domain, or with another SPIFFE ID never reaches the app", async () => {
    const app = await startApp("P");
    cleanup.push(() => app.close());
    const p = await payments("p", app);
    const { request } = await import("node:https");
    const { readFileSync } = await import("node:fs");
    const [host, port] = [p.inbound!.split(":")[0]!, Number(p.inbound!.split(":")[1])];
    const tryTls = (cert?: string, key?: string) =>
      new Promise<string>((ok) => {
        const req = request(
          { host, port, path: "/charge", ca: readFileSync(join(dir, "certs/root.pem")), cert: cert && readFileSync(cert), key: key && readFileSync(key), checkServerIdentity: () => undefined, agent: false },
          (res) => ok(`status ${res.statusCode}`),
        );
        req.on("error", (e) => ok(`error ${(e as NodeJS.ErrnoException).code ?? e.message}`));
        req.end();
      });
    assert.match(await tryTls(), /^error/);
    assert.match(await tryTls(join(dir, "other/orders.pem"), join(dir, "other/orders-key.pem")), /^error/);
    assert.equal(app.hits, 0);

    // The caller checks the callee: orders expects a different SPIFFE ID at this address.
    const wrong = await startProxy(
      await config(
        "orders-wrong",
        sidecarConfig("orders", `endpoints:\n  payments:\n    - { address: "${p.inbound}", identity: spiffe://cluster.local/ns/default/sa/billing }`),
      ),
    );
    cleanup.push(() => wrong.stop());
    const r = await http(wrong.outbound, "http://payments/charge");
    assert.equal(r.status, 503);
    assert.match(r.body, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/billing/);
    assert.equal(app.hits, 0);
  });
});

describe("bad input to remora proxy", () => {
  test("a broken file exits non-zero with one sentence naming the file and field", async () => {
    const bad = await config("bad", sidecarConfig("orders", "policies:\n  - route: { destination: payments, retry_policy: { per_try_timeout: 25x } }\n"));
    const r = await remora(["proxy", "--config", bad]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /route\.retry_policy\.per_try_timeout: "25x" is not a duration/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);

    const unknown = await config("unknown", sidecarConfig("orders", "outbund: {}\n"));
    const u = await remora(["proxy", "--config", unknown]);
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /unknown\.yaml.*outbund/);
  });

  test("missing cert file, expired cert and port in use are each one sentence", async () => {
    const missing = await config("missing", sidecarConfig("nobody", ""));
    const m = await remora(["proxy", "--config", missing]);
    assert.notEqual(m.code, 0);
    assert.match(m.stderr, /identity\.cert .*nobody\.pem: no such file/);

    const ex = await remora(["certs", "--out", join(dir, "certs"), "--ttl", "1ms", "expired"]);
    assert.equal(ex.code, 0, ex.stderr);
    await new Promise((ok) => setTimeout(ok, 20));
    const e = await remora(["proxy", "--config", await config("expired", sidecarConfig("expired", ""))]);
    assert.notEqual(e.code, 0);
    assert.match(e.stderr, /identity\.cert .*expired/);

    const busy = await startApp("busy");
    cleanup.push(() => busy.close());
    const inUse = await config("in-use", sidecarConfig("orders", "").replace('outbound: { listen: "127.0.0.1:0" }', `outbound: { listen: "${busy.address}" }`));
    const b = await remora(["proxy", "--config", inUse]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, new RegExp(`cannot listen on ${busy.address}: address already in use`));
  });
});
