// The admin routes GET /v1/stats and GET /v1/tap on the control plane app, hermetic:
// sidecars' admin servers are a fake fetch, proxies are registered straight in the plane.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createControlApp } from "../../src/control/app.ts";
import { StatsCollector } from "../../src/control/stats/collector.ts";
import { hostOf, tapLineOf, type TapMessage } from "../../src/control/tap.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import { createMeshMetrics } from "../../src/core/metrics/mesh-metrics.ts";
import { ADMIN, id, setup, TD } from "./support.ts";

async function observed() {
  const s = await setup();
  const registries = new Map<string, Registry>();
  const feeds = new Map<string, ReadableStreamDefaultController<Uint8Array>>();
  const feedUrls: string[] = [];
  const encoder = new TextEncoder();
  const fetch = async (url: string, init?: RequestInit): Promise<Response> => {
    const u = new URL(url);
    if (u.pathname === "/metrics") return new Response(registries.get(u.host)?.expose() ?? "");
    if (u.pathname === "/events") {
      feedUrls.push(url);
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          feeds.set(u.host, c);
          c.enqueue(encoder.encode(JSON.stringify({ type: "hello", service: "x", time: "t" }) + "\n"));
          init?.signal?.addEventListener("abort", () => {
            feeds.delete(u.host);
            try {
              c.error(init.signal?.reason);
            } catch {
              // already closed
            }
          });
        },
      });
      return new Response(body);
    }
    return new Response("no\n", { status: 404 });
  };
  const push = (admin: string, rec: object) => feeds.get(admin)!.enqueue(encoder.encode(JSON.stringify(rec) + "\n"));
  const stats = new StatsCollector({ proxies: () => s.plane.proxies(), events: s.plane.events, clock: s.clock, fetch });
  const app = createControlApp({
    plane: s.plane,
    clock: s.clock,
    ca: s.ca,
    bundlePem: s.ca.certPem,
    trustDomain: TD,
    tokenKeys: s.tokenKeys,
    adminToken: ADMIN,
    certTtlMs: 3_600_000,
    logger: { info() {}, warn() {} },
    observe: { stats, fetch },
  });
  const get = (path: string, token: string | undefined = ADMIN, signal?: AbortSignal) =>
    Promise.resolve(app.fetch(new Request(`https://control.test${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {}, ...(signal ? { signal } : {}) }), { remote: "192.0.2.9:40000" }));
  const register = async (proxy: string, service: string, admin: string) => {
    const reg = new Registry();
    registries.set(admin, reg);
    await s.plane.heartbeat({ proxy, service, namespace: "default", identity: id("default", service), admin, ...(service === "orders" ? {} : { address: admin.replace(":15000", ":15006") }) });
    return createMeshMetrics(reg);
  };
  return { ...s, get, register, push, feeds, feedUrls, stats };
}

async function readLines(res: Response, n: number): Promise<TapMessage[]> {
  const out: TapMessage[] = [];
  const decoder = new TextDecoder();
  let buf = "";
  const reader = res.body!.getReader();
  while (out.length < n) {
    const { done, value } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      out.push(JSON.parse(buf.slice(0, i)) as TapMessage);
      buf = buf.slice(i + 1);
    }
  }
  reader.releaseLock();
  return out;
}

describe("GET /v1/stats", () => {
  test("needs the admin token", async () => {
    const { get } = await observed();
    assert.equal((await get("/v1/stats", "")).status, 401);
    assert.equal((await get("/v1/stats", "wrong")).status, 401);
  });

  test("refuses a bad window with one sentence naming it", async () => {
    const { get } = await observed();
    for (const [w, msg] of [
      ["soon", 'window: "soon" is not a duration (e.g. 30s, 5m).'],
      ["500ms", "window: 500ms must be between 1s and 10m."],
      ["1h", "window: 1h must be between 1s and 10m."],
    ]) {
      const res = await get(`/v1/stats?window=${w}`);
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { error: msg, code: "ERR_REQUEST_INVALID" });
    }
  });

  test("scrapes on demand and reports the edge orders -> payments", async () => {
    const { get, register, clock } = await observed();
    const orders = await register("orders-1", "orders", "192.0.2.1:15000");
    await register("payments-1", "payments", "192.0.2.2:15000");
    assert.equal((await get("/v1/stats")).status, 200); // the baseline
    for (let i = 0; i < 20; i++) {
      orders.requests.inc({ direction: "outbound", destination: "payments", code_class: i < 19 ? "2xx" : "5xx" });
      orders.duration.observe({ direction: "outbound", destination: "payments" }, 0.02);
    }
    clock.advance(2_000);
    const res = await get("/v1/stats?window=10s");
    assert.equal(res.status, 200);
    const body = (await res.json()) as { windowSeconds: number; services: { name: string; meshed: number }[]; edges: { from: string; to: string; requests: number; rps: number; success: number }[]; proxies: unknown[] };
    assert.equal(body.windowSeconds, 10);
    assert.deepEqual(body.services.map((x) => [x.name, x.meshed]), [["orders", 1], ["payments", 1]]);
    assert.deepEqual(body.edges.map((e) => [e.from, e.to, e.requests, e.rps, e.success]), [["orders", "payments", 20, 10, 0.95]]);
    assert.equal(body.proxies.length, 2);
  });
});

describe("GET /v1/tap", () => {
  test("needs the admin token and a service", async () => {
    const { get } = await observed();
    assert.equal((await get("/v1/tap?service=payments", "")).status, 401);
    const res = await get("/v1/tap");
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /^service: name the service to tap/);
    assert.equal((await get("/v1/tap?service=payments&max=0")).status, 400);
  });

  test("fans in the service's inbound and its callers' outbound requests, then stops at max", async () => {
    const { get, register, push, feeds } = await observed();
    await register("orders-1", "orders", "192.0.2.1:15000");
    await register("payments-1", "payments", "192.0.2.2:15000");
    await register("ledger-1", "ledger", "192.0.2.4:15000");
    const res = await get("/v1/tap?service=payments&max=3");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "application/x-ndjson");
    const [hello] = await readLines(res, 1);
    assert.deepEqual(hello && hello.type === "hello" ? hello.proxies.sort() : hello, ["ledger-1", "orders-1", "payments-1"]);

    const request = { time: "2026-01-01T00:00:01.000Z", type: "request", requestId: "r1", method: "POST", path: "/charge", traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
    // Not about payments: the ledger's own inbound, and orders calling ledger.
    push("192.0.2.4:15000", { ...request, service: "ledger", direction: "inbound", authority: "ledger", status: 200, durationMs: 1, peer: id("default", "orders"), mtls: true });
    push("192.0.2.1:15000", { ...request, service: "orders", direction: "outbound", authority: "ledger", status: 200, durationMs: 1 });
    // About payments: first the caller's outbound view...
    push("192.0.2.1:15000", { ...request, service: "orders", direction: "outbound", authority: "payments:80", status: 200, durationMs: 12.25, upstream: "192.0.2.2:15006", attempts: 1, peer: id("default", "payments"), mtls: true });
    const [out] = (await readLines(res, 1)) as Extract<TapMessage, { type: "request" }>[];
    assert.deepEqual(
      { ...out },
      { type: "request", time: request.time, direction: "outbound", proxy: "orders-1", caller: id("default", "orders"), callee: "payments", calleeIdentity: id("default", "payments"), method: "POST", path: "/charge", status: 200, latencyMs: 12.25, mtls: true, upstream: "192.0.2.2:15006", traceId: request.traceId },
    );
    // ...then the callee's inbound view, and plaintext calls (no caller identity).
    push("192.0.2.2:15000", { ...request, service: "payments", direction: "inbound", authority: "payments", status: 200, durationMs: 10.5, upstream: "127.0.0.1:8080", peer: id("default", "orders"), mtls: true });
    push("192.0.2.2:15000", { ...request, service: "payments", direction: "inbound", authority: "payments", status: 503, durationMs: 2, mtls: false });
    push("192.0.2.2:15000", { ...request, service: "payments", direction: "inbound", authority: "payments", status: 200, durationMs: 2, mtls: false });
    const rest = (await readLines(res, 3)) as Extract<TapMessage, { type: "request" }>[];
    assert.equal(rest.length, 2, "the stream ends after max=3 request lines");
    const [inb, plain] = rest;
    assert.deepEqual([inb!.direction, inb!.proxy, inb!.caller, inb!.calleeIdentity, inb!.latencyMs], ["inbound", "payments-1", id("default", "orders"), id("default", "payments"), 10.5]);
    assert.deepEqual([plain!.caller, plain!.status, plain!.mtls], [null, 503, false]);
    // Every sidecar feed was closed when the tap ended.
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(feeds.size, 0);
  });

  test("a client that goes away closes every sidecar feed", async () => {
    const { get, register, feeds } = await observed();
    await register("payments-1", "payments", "192.0.2.2:15000");
    const gone = new AbortController();
    const res = await get("/v1/tap?service=payments", ADMIN, gone.signal);
    await readLines(res, 1);
    assert.equal(feeds.size, 1);
    await res.body!.cancel();
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(feeds.size, 0);
  });
});

describe("tap helpers", () => {
  test("hostOf drops the port, keeps IPv6 brackets", () => {
    assert.equal(hostOf("Payments:8080"), "payments");
    assert.equal(hostOf("payments"), "payments");
    assert.equal(hostOf("[2001:db8::1]:80"), "[2001:db8::1]");
  });

  test("a record of another type is not a tap line", () => {
    assert.equal(tapLineOf({ proxy: "p", service: "payments", identity: id("default", "payments") }, "payments", { type: "eject", direction: "inbound" }), undefined);
  });
});
