// POST /v2/config: only the destinations named, only what changed, only to their watchers.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { flush, id, setup } from "./support.ts";

const ORDERS = id("default", "orders");
const policy = (retries: number) => `route:\n  destination: payments\n  retry_policy:\n    num_retries: ${retries}\n`;

type Answer = { version: string; destinations: Record<string, { version: string; found: boolean; endpoints?: { address: string }[]; policy?: unknown; vip?: string }>; authorization?: { version: string; document: unknown } };

async function register(ctx: Awaited<ReturnType<typeof setup>>, service: string, proxy: string, address: string) {
  const res = await ctx.call("PUT", `/v1/proxies/${proxy}`, { peer: id("default", service), body: { service, address } });
  assert.equal(res.status, 200);
}

describe("POST /v2/config", () => {
  test("needs an SVID and a valid body naming destinations", async () => {
    const ctx = await setup();
    assert.equal((await ctx.call("POST", "/v2/config", { body: { proxy: "o1", destinations: {} } })).status, 401);
    const bad = await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { "Pay_ments": "" } } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /destinations.*not a service name/);
  });

  test("answers only the destinations named, with policy, endpoints and VIP; unknown names as not found", async () => {
    const ctx = await setup();
    assert.equal((await ctx.admin("PUT", "/v1/policies", { text: policy(2) })).status, 200);
    await register(ctx, "payments", "p1", "192.0.2.1:15006");
    await register(ctx, "ledger", "l1", "192.0.2.2:15006");
    const res = await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { payments: "", nosuch: "" } } });
    assert.equal(res.status, 200);
    const a = (await res.json()) as Answer;
    assert.deepEqual(Object.keys(a.destinations).sort(), ["nosuch", "payments"]);
    assert.equal(a.destinations.nosuch?.found, false);
    const p = a.destinations.payments!;
    assert.equal(p.found, true);
    assert.deepEqual(p.endpoints?.map((e) => e.address), ["192.0.2.1:15006"]);
    assert.equal((p.policy as { route: { retry_policy: { num_retries: number } } }).route.retry_policy.num_retries, 2);
    assert.match(String(p.vip), /^240\.240\.0\.\d+$/);
    assert.deepEqual(a.authorization?.document, null, "the caller's own authorization always comes (none applied: null)");
  });

  test("a change to an unwatched destination wakes nobody; a change to a watched one sends that one only", async () => {
    const ctx = await setup();
    await register(ctx, "payments", "p1", "192.0.2.1:15006");
    await register(ctx, "ledger", "l1", "192.0.2.2:15006");
    const first = (await (await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { payments: "", ledger: "" } } })).json()) as Answer;
    const held = { payments: first.destinations.payments!.version, ledger: first.destinations.ledger!.version };
    const body = { proxy: "o1", wait: 30, destinations: { payments: held.payments }, authorization: first.authorization!.version };

    let done = false;
    const pending = ctx.call("POST", "/v2/config", { peer: ORDERS, body }).then((r) => ((done = true), r));
    await flush();
    await register(ctx, "ledger", "l2", "192.0.2.3:15006"); // not watched by this request
    await flush();
    assert.equal(done, false, "a ledger change must not answer a watch on payments");

    await register(ctx, "payments", "p2", "192.0.2.4:15006");
    const res = await pending;
    assert.equal(res.status, 200);
    const a = (await res.json()) as Answer;
    assert.deepEqual(Object.keys(a.destinations), ["payments"]);
    assert.deepEqual(a.destinations.payments?.endpoints?.map((e) => e.address), ["192.0.2.1:15006", "192.0.2.4:15006"]);
    assert.equal(a.authorization, undefined, "unchanged authorization is not resent");
  });

  test("answers 304 after the wait when nothing watched changed", async () => {
    const ctx = await setup();
    await register(ctx, "payments", "p1", "192.0.2.1:15006");
    const first = (await (await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { payments: "" } } })).json()) as Answer;
    const pending = ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", wait: 10, destinations: { payments: first.destinations.payments!.version }, authorization: first.authorization!.version } });
    await flush();
    await register(ctx, "ledger", "l1", "192.0.2.2:15006");
    await flush();
    ctx.clock.advance(10_000);
    assert.equal((await pending).status, 304);
  });

  test("a service appearing later is pushed to whoever asked for it while it was unknown", async () => {
    const ctx = await setup();
    const first = (await (await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { payments: "" } } })).json()) as Answer;
    assert.equal(first.destinations.payments?.found, false);
    const pending = ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { payments: first.destinations.payments!.version }, authorization: first.authorization!.version } });
    await flush();
    await register(ctx, "payments", "p1", "192.0.2.1:15006");
    const a = (await (await pending).json()) as Answer;
    assert.equal(a.destinations.payments?.found, true);
  });

  test("the caller's own authorization comes with every first answer and on change", async () => {
    const ctx = await setup();
    const authz = "authorization:\n  destination: orders\n  allow:\n    - from: [spiffe://cluster.local/ns/default/sa/web]\n";
    assert.equal((await ctx.admin("PUT", "/v1/policies", { text: authz })).status, 200);
    const a = (await (await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: {} } })).json()) as Answer;
    assert.equal((a.authorization?.document as { authorization: { destination: string } }).authorization.destination, "orders");
  });
});

describe("GET /v1/proxies with on-demand sidecars", () => {
  type Row = { proxy: string; status: string; config_version: string | null; error: string | null; config_mode: string; destinations: number };
  const rows = async (ctx: Awaited<ReturnType<typeof setup>>) => {
    const list = (await (await ctx.admin("GET", "/v1/proxies")).json()) as Row[];
    return Object.fromEntries(list.map((r) => [r.proxy, r]));
  };

  test("an on-demand proxy is in sync when it holds the latest of what it watches, not of the whole mesh", async () => {
    const ctx = await setup();
    await register(ctx, "payments", "p1", "192.0.2.1:15006");
    assert.equal((await ctx.call("PUT", "/v1/proxies/o1", { peer: ORDERS, body: { service: "orders" } })).status, 200);
    const first = (await (await ctx.call("POST", "/v2/config", { peer: ORDERS, body: { proxy: "o1", destinations: { payments: "" } } })).json()) as Answer;
    await ctx.call("POST", "/v1/config/ack", { peer: ORDERS, body: { proxy: "o1", version: first.version, status: "ACK" } });
    // p1 stands for a whole-mesh sidecar: it ACKs the state version.
    await ctx.call("POST", "/v1/config/ack", { peer: id("default", "payments"), body: { proxy: "p1", version: ctx.plane.version, status: "ACK" } });
    const held = { proxy: "o1", wait: 30, destinations: { payments: first.destinations.payments!.version }, authorization: first.authorization!.version };
    const second = ctx.call("POST", "/v2/config", { peer: ORDERS, body: held });
    await flush();
    let r = await rows(ctx);
    assert.deepEqual([r.o1?.status, r.o1?.config_mode, r.o1?.destinations], ["ACK", "on-demand", 1]);
    assert.deepEqual([r.p1?.status, r.p1?.config_mode], ["ACK", "whole-mesh"]);

    // A change o1 does not watch: the whole-mesh proxy is behind, o1 is not.
    await register(ctx, "ledger", "l1", "192.0.2.2:15006");
    await flush();
    r = await rows(ctx);
    assert.equal(r.o1?.status, "ACK", "a ledger change must not make a payments-only watcher PENDING");
    assert.equal(r.p1?.status, "PENDING");
    assert.equal(r.p1?.destinations, 3, "a whole-mesh sidecar holds every destination: payments, ledger and orders (a VIP)");

    // A proxy of another identity cannot speak for o1.
    const spoof = ctx.call("POST", "/v2/config", { peer: id("default", "ledger"), body: { proxy: "o1", wait: 0, destinations: {} } });
    await flush();
    assert.equal((await rows(ctx)).o1?.destinations, 1);

    // A change it watches: PENDING until it polls again holding the new version, then its ACK or NACK stands.
    await register(ctx, "payments", "p2", "192.0.2.3:15006");
    const next = (await (await second).json()) as Answer;
    assert.deepEqual(Object.keys(next.destinations), ["payments"]);
    assert.equal((await rows(ctx)).o1?.status, "PENDING");
    await ctx.call("POST", "/v1/config/ack", { peer: ORDERS, body: { proxy: "o1", version: next.version, status: "NACK", error: "payments: bad policy" } });
    const third = ctx.call("POST", "/v2/config", { peer: ORDERS, body: { ...held, destinations: { payments: next.destinations.payments!.version } } });
    await flush();
    r = await rows(ctx);
    assert.deepEqual([r.o1?.status, r.o1?.config_version, r.o1?.error], ["NACK", next.version, "payments: bad policy"]);

    ctx.clock.advance(30_000);
    assert.equal((await third).status, 304);
    await spoof;
  });
});
