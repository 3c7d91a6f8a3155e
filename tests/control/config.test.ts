// Config snapshots, long-poll, ACK/NACK and the registry with heartbeat lapse, on a fake clock.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { flush, id, setup } from "./support.ts";

const PAYMENTS = id("default", "payments");
const POLICY = `route:
  destination: payments
  retry_policy:
    num_retries: 2
`;

interface Snapshot {
  version: string;
  policies: unknown[];
  authorization: unknown[];
  endpoints: Record<string, { address: string; identity: string }[]>;
}

function register(ctx: Awaited<ReturnType<typeof setup>>, proxy: string, address: string, peer = PAYMENTS, service = "payments") {
  return ctx.call("PUT", `/v1/proxies/${proxy}`, { peer, body: { service, namespace: "default", address, admin: "192.0.2.1:15000", runtime: "node 24", config_version: "1", cert_serial: "ab", cert_not_after: "2026-01-02T00:00:00.000Z" } });
}

describe("GET /v1/config", () => {
  test("needs an SVID: 401 without, snapshot with", async () => {
    const ctx = await setup();
    assert.equal((await ctx.call("GET", "/v1/config")).status, 401);
    assert.equal((await ctx.call("GET", "/v1/config", { token: "admin-secret-for-tests" })).status, 401);
    const res = await ctx.call("GET", "/v1/config?proxy=p1", { peer: PAYMENTS });
    assert.equal(res.status, 200);
    const snap = (await res.json()) as Snapshot;
    assert.deepEqual(snap, { version: "1", policies: [], authorization: [], endpoints: {} });
  });

  test("a long-poll at the current version returns as soon as a policy is applied", async () => {
    const ctx = await setup();
    const pending = ctx.call("GET", "/v1/config?proxy=p1&version=1&wait=30", { peer: PAYMENTS });
    let settled = false;
    void pending.then(() => (settled = true));
    await flush();
    assert.equal(settled, false);
    const applied = await ctx.admin("PUT", "/v1/policies", { text: POLICY });
    assert.equal(applied.status, 200);
    assert.deepEqual(await applied.json(), { applied: ["payments"], version: "2" });
    const res = await pending;
    assert.equal(res.status, 200);
    const snap = (await res.json()) as Snapshot;
    assert.equal(snap.version, "2");
    assert.deepEqual(snap.policies, [{ route: { destination: "payments", retry_policy: { num_retries: 2 } } }]);
    assert.equal(ctx.clock.pending(), 0, "the watcher's wait timer is cancelled");
  });

  test("a long-poll with nothing changed answers 304 after wait seconds of (fake) time", async () => {
    const ctx = await setup();
    const started = ctx.clock.now();
    const res = await ctx.clock.run(ctx.call("GET", "/v1/config?proxy=p1&version=1&wait=5", { peer: PAYMENTS }));
    assert.equal(res.status, 304);
    assert.equal(await res.text(), "");
    assert.equal(ctx.clock.now() - started, 5_000);
  });

  test("wait is capped at 60 s, and many watchers share one change", async () => {
    const ctx = await setup();
    const watchers = Array.from({ length: 50 }, () => ctx.call("GET", "/v1/config?version=1&wait=600", { peer: PAYMENTS }));
    await flush();
    assert.equal(ctx.clock.nextTimerAt(), ctx.clock.now() + 60_000);
    await ctx.admin("PUT", "/v1/policies", { text: POLICY });
    const statuses = (await Promise.all(watchers)).map((r) => r.status);
    assert.deepEqual(new Set(statuses), new Set([200]));
  });

  test("a different version returns at once", async () => {
    const ctx = await setup();
    const res = await ctx.call("GET", "/v1/config?version=0&wait=30", { peer: PAYMENTS });
    assert.equal(res.status, 200);
  });
});

describe("registry", () => {
  test("registration adds the endpoint with the SVID's identity and bumps the version", async () => {
    const ctx = await setup();
    assert.equal((await register(ctx, "payments-1", "192.0.2.1:15006")).status, 200);
    const snap = (await (await ctx.call("GET", "/v1/config", { peer: PAYMENTS })).json()) as Snapshot;
    assert.equal(snap.version, "2");
    assert.deepEqual(snap.endpoints, { payments: [{ address: "192.0.2.1:15006", identity: PAYMENTS }] });
    // A heartbeat of the same endpoint is not a change.
    await register(ctx, "payments-1", "192.0.2.1:15006");
    assert.equal(ctx.plane.version, "2");
  });

  test("a proxy cannot register for another service, or take over another's id", async () => {
    const ctx = await setup();
    const res = await register(ctx, "orders-1", "192.0.2.2:15006", PAYMENTS, "orders");
    assert.equal(res.status, 403);
    await register(ctx, "payments-1", "192.0.2.1:15006");
    const takeover = await register(ctx, "payments-1", "192.0.2.3:15006", id("default", "orders"), "orders");
    assert.equal(takeover.status, 403);
    assert.equal((await ctx.call("PUT", "/v1/proxies/x", { body: { service: "payments", address: "192.0.2.1:1" } })).status, 401);
  });

  test("an endpoint whose heartbeat lapses leaves the snapshot and bumps the version", async () => {
    const ctx = await setup({ lapseMs: 15_000 });
    await register(ctx, "payments-1", "192.0.2.1:15006");
    await register(ctx, "payments-2", "192.0.2.2:15006");
    ctx.clock.advance(10_000);
    await register(ctx, "payments-2", "192.0.2.2:15006"); // heartbeat
    ctx.clock.advance(6_000);
    assert.deepEqual(await ctx.plane.sweep(), ["payments-1"]);
    const snap = (await (await ctx.call("GET", "/v1/config", { peer: PAYMENTS })).json()) as Snapshot;
    assert.equal(snap.version, "4");
    assert.deepEqual(snap.endpoints, { payments: [{ address: "192.0.2.2:15006", identity: PAYMENTS }] });
  });

  test("DELETE on drain removes the endpoint at once", async () => {
    const ctx = await setup();
    await register(ctx, "payments-1", "192.0.2.1:15006");
    assert.equal((await ctx.call("DELETE", "/v1/proxies/payments-1", { peer: id("default", "orders") })).status, 403);
    assert.equal((await ctx.call("DELETE", "/v1/proxies/payments-1", { peer: PAYMENTS })).status, 200);
    assert.equal((await ctx.call("DELETE", "/v1/proxies/payments-1", { peer: PAYMENTS })).status, 404);
    assert.deepEqual(ctx.plane.snapshot().endpoints, {});
  });

  test("ACK and NACK are recorded per proxy and shown by GET /v1/proxies", async () => {
    const ctx = await setup();
    await register(ctx, "payments-1", "192.0.2.1:15006");
    await register(ctx, "payments-2", "192.0.2.2:15006");
    const v = ctx.plane.version;
    assert.equal((await ctx.call("POST", "/v1/config/ack", { peer: PAYMENTS, body: { proxy: "payments-1", version: v, status: "ACK" } })).status, 200);
    await ctx.call("POST", "/v1/config/ack", { peer: PAYMENTS, body: { proxy: "payments-2", version: v, status: "NACK", error: "route.timeout: bad" } });
    const bad = await ctx.call("POST", "/v1/config/ack", { peer: PAYMENTS, body: { proxy: "payments-1", version: v, status: "MAYBE" } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /status/);
    const list = (await (await ctx.admin("GET", "/v1/proxies")).json()) as Record<string, unknown>[];
    assert.deepEqual(
      list.map((p) => [p.proxy, p.status, p.config_version, p.error, p.identity, p.cert_serial]),
      [
        ["payments-1", "ACK", v, null, PAYMENTS, "ab"],
        ["payments-2", "NACK", v, "route.timeout: bad", PAYMENTS, "ab"],
      ],
    );
    // A new version makes every proxy PENDING until it answers again.
    await ctx.admin("PUT", "/v1/policies", { text: POLICY });
    const after = (await (await ctx.admin("GET", "/v1/proxies")).json()) as Record<string, unknown>[];
    assert.deepEqual(after.map((p) => p.status), ["PENDING", "PENDING"]);
  });
});
