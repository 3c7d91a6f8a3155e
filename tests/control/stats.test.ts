// Metrics gathering and golden-metric aggregation, hermetic: fake sidecars are metric
// registries served through a fake fetch, time is a fake clock, addresses are 192.0.2.x.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import { createMeshMetrics, type MeshMetrics } from "../../src/core/metrics/mesh-metrics.ts";
import { parseExposition } from "../../src/core/metrics/parse.ts";
import { StatsCollector, type ProxyTarget } from "../../src/control/stats/collector.ts";
import { counterIncrease, histogramIncrease, windowOf, type Scrape } from "../../src/control/stats/window.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const id = (svc: string) => `spiffe://cluster.local/ns/default/sa/${svc}`;

/** A sidecar as the collector sees it: a registry behind an admin address. */
class FakeSidecar {
  registry = new Registry();
  m: MeshMetrics = createMeshMetrics(this.registry);
  readonly target: ProxyTarget;
  /** What its admin /endpoints answers. */
  endpoints: unknown[] = [];
  constructor(target: ProxyTarget) {
    this.target = target;
  }
  /** A restart: every counter back to zero. */
  restart(): void {
    this.registry = new Registry();
    this.m = createMeshMetrics(this.registry);
  }
  outbound(dest: string, status: number, seconds: number, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.m.requests.inc({ direction: "outbound", destination: dest, code_class: `${Math.floor(status / 100)}xx` });
      this.m.duration.observe({ direction: "outbound", destination: dest }, seconds);
    }
  }
  inbound(status: number, seconds: number, n = 1, tls: "mtls" | "plaintext" = "mtls"): void {
    for (let i = 0; i < n; i++) {
      this.m.requests.inc({ direction: "inbound", destination: "app", code_class: `${Math.floor(status / 100)}xx` });
      this.m.duration.observe({ direction: "inbound", destination: "app" }, seconds);
      this.m.inboundTls.inc({ tls });
    }
  }
}

function mesh() {
  const clock = new FakeClock(T0);
  const sidecars = new Map<string, FakeSidecar>();
  const down = new Set<string>();
  const fetched: string[] = [];
  const add = (proxy: string, service: string, admin: string) => {
    const s = new FakeSidecar({ proxy, service, identity: id(service), admin });
    sidecars.set(admin, s);
    return s;
  };
  const fetch = async (url: string) => {
    if (url.endsWith("/metrics")) fetched.push(url);
    const u = new URL(url);
    if (down.has(u.host)) throw new TypeError("fetch failed: connection refused");
    const s = sidecars.get(u.host);
    if (s && u.pathname === "/endpoints") return Response.json(s.endpoints);
    if (!s || u.pathname !== "/metrics") return new Response("not found\n", { status: 404 });
    return new Response(s.registry.expose());
  };
  const events = new EventTarget();
  const collector = new StatsCollector({ proxies: () => [...sidecars.values()].map((s) => s.target), events, clock, fetch });
  return { clock, sidecars, down, fetched, add, collector, events };
}

const scrape = (at: number, text: string): Scrape => ({ at, families: parseExposition(text) });

describe("window arithmetic", () => {
  test("a counter that drops restarted from zero; a missing series counts from zero", () => {
    const scrapes = [
      scrape(0, "# TYPE c counter\nc{a=\"x\"} 10\n"),
      scrape(5_000, "# TYPE c counter\nc{a=\"x\"} 15\nc{a=\"y\"} 4\n"),
      scrape(10_000, "# TYPE c counter\nc{a=\"x\"} 3\nc{a=\"y\"} 6\n"),
      scrape(15_000, "# TYPE c counter\nc{a=\"x\"} 8\nc{a=\"y\"} 6\n"),
    ];
    const inc = [...counterIncrease(scrapes, "c").values()].map((s) => [s.labels.a, s.value]);
    assert.deepEqual(inc.sort(), [["x", 5 + 3 + 5], ["y", 6]]);
  });

  test("the window starts at the last scrape at or before its start", () => {
    const h = [0, 5_000, 10_000, 15_000].map((at) => scrape(at, "x 1\n"));
    assert.deepEqual(windowOf(h, 7_000).map((s) => s.at), [5_000, 10_000, 15_000]);
    assert.deepEqual(windowOf(h, 5_000).map((s) => s.at), [5_000, 10_000, 15_000]);
    assert.deepEqual(windowOf(h, -1).map((s) => s.at), [0, 5_000, 10_000, 15_000]);
  });

  test("histogram increase bucket by bucket, reset when the count drops", () => {
    const h = (b1: number, inf: number, sum: number) => `# TYPE h histogram\nh_bucket{le="1"} ${b1}\nh_bucket{le="+Inf"} ${inf}\nh_sum ${sum}\nh_count ${inf}\n`;
    const [got] = [...histogramIncrease([scrape(0, h(2, 3, 4)), scrape(1, h(5, 7, 9)), scrape(2, h(1, 1, 0.5))], "h").values()];
    assert.deepEqual(got, { labels: {}, buckets: [{ le: 1, count: 3 + 1 }], count: 4 + 1, sum: 5 + 0.5 });
  });
});

describe("StatsCollector and the report", () => {
  test("services, edges and proxies: rate, success, quantiles, retries, ejections, mTLS share", async () => {
    const { clock, add, collector } = mesh();
    const orders = add("orders-1", "orders", "192.0.2.1:15000");
    const pay1 = add("payments-1", "payments", "192.0.2.2:15000");
    const pay2 = add("payments-2", "payments", "192.0.2.3:15000");
    await collector.scrapeAll(); // the baseline, as at registration

    orders.outbound("payments", 200, 0.004, 90);
    orders.outbound("payments", 503, 0.2, 10);
    for (let i = 0; i < 7; i++) orders.m.retries.inc({ destination: "payments" });
    orders.m.endpointsEjected.set({ destination: "payments" }, 1);
    orders.m.outlierEjections.inc({ destination: "payments", endpoint: "192.0.2.2:15006" });
    orders.endpoints = [
      {
        destination: "payments",
        endpoints: [
          { address: "192.0.2.2:15006", identity: id("payments"), state: "ejected", ejected_until: "2026-01-01T00:00:40.000Z", ejections: 1, active_requests: 0 },
          { address: "192.0.2.3:15006", identity: id("payments"), state: "healthy", ejections: 0, active_requests: 0 },
        ],
      },
    ];
    pay1.inbound(200, 0.003, 60);
    pay2.inbound(200, 0.003, 30, "mtls");
    pay2.inbound(500, 0.003, 5, "mtls");
    pay2.inbound(500, 0.003, 5, "plaintext");
    clock.advance(10_000);
    await collector.scrapeAll();

    const r = collector.report(30_000);
    assert.equal(r.windowSeconds, 30);
    assert.equal(r.time, new Date(T0 + 10_000).toISOString());
    assert.equal(r.edges.length, 1);
    const edge = r.edges[0]!;
    assert.equal(edge.from, "orders");
    assert.equal(edge.to, "payments");
    assert.equal(edge.requests, 100);
    assert.equal(edge.rps, 10);
    assert.equal(edge.success, 0.9);
    assert.equal(edge.retries, 7);
    assert.equal(edge.ejected, 1);
    // histogram_quantile by hand: rank 50 of 90 in (2.5ms, 5ms] -> 2.5 + 2.5 * 50/90;
    // rank 95 and 99 in (100ms, 250ms] holding ranks 91..100 -> 100 + 150 * 5/10, 100 + 150 * 9/10.
    assert.deepEqual(edge.latencyMs, { p50: 3.889, p95: 175, p99: 235 });

    const [o, p] = r.services;
    assert.equal(o!.name, "orders");
    assert.deepEqual([o!.proxies, o!.meshed, o!.requests, o!.success, o!.rps], [1, 1, 0, null, 0]);
    assert.equal(o!.mtls.share, null);
    assert.equal(p!.name, "payments");
    assert.deepEqual([p!.proxies, p!.meshed, p!.requests, p!.rps, p!.success], [2, 2, 100, 10, 0.9]);
    assert.equal(p!.retries, 7, "retries toward payments are counted by its callers");
    assert.equal(p!.ejected, 1);
    assert.deepEqual(p!.mtls, { mtls: 95, plaintext: 5, share: 0.95 });

    const byId = new Map(r.proxies.map((x) => [x.proxy, x]));
    assert.equal(byId.get("payments-1")!.success, 1);
    assert.equal(byId.get("payments-2")!.success, 0.75);
    assert.equal(byId.get("orders-1")!.outbound[0]!.to, "payments");
    assert.deepEqual(byId.get("orders-1")!.ejections, [{ destination: "payments", endpoint: "192.0.2.2:15006", total: 1 }]);
    assert.deepEqual(byId.get("orders-1")!.endpoints, [
      { destination: "payments", address: "192.0.2.2:15006", identity: id("payments"), state: "ejected", ejectedUntil: "2026-01-01T00:00:40.000Z" },
      { destination: "payments", address: "192.0.2.3:15006", identity: id("payments"), state: "healthy", ejectedUntil: null },
    ]);
    assert.deepEqual(byId.get("payments-1")!.endpoints, [], "a proxy that calls nobody");
    assert.equal(byId.get("orders-1")!.scraped, new Date(T0 + 10_000).toISOString());
    assert.equal(byId.get("orders-1")!.error, null);
  });

  test("a narrower window sees only the newest interval; a restarted sidecar is not negative", async () => {
    const { clock, add, collector } = mesh();
    const orders = add("orders-1", "orders", "192.0.2.1:15000");
    await collector.scrapeAll();
    orders.outbound("payments", 200, 0.01, 50);
    clock.advance(20_000);
    await collector.scrapeAll();
    orders.restart();
    orders.outbound("payments", 500, 0.01, 10);
    clock.advance(5_000);
    await collector.scrapeAll();

    const wide = collector.report(60_000).edges[0]!;
    assert.equal(wide.requests, 60);
    assert.equal(wide.rps, 60 / 25);
    assert.equal(wide.success, 0.8333, "rounded to four digits");
    const narrow = collector.report(5_000).edges[0]!;
    assert.equal(narrow.requests, 10);
    assert.equal(narrow.rps, 2);
    assert.equal(narrow.success, 0);
  });

  test("with one scrape there is no rate yet, and a service with no traffic shows none", async () => {
    const { add, collector } = mesh();
    add("payments-1", "payments", "192.0.2.2:15000").inbound(200, 0.01, 3);
    await collector.scrapeAll();
    const [p] = collector.report(30_000).services;
    assert.deepEqual([p!.requests, p!.rps, p!.success, p!.latencyMs.p99], [0, null, null, null]);
  });

  test("an unreachable proxy is named with its URL and not counted as meshed", async () => {
    const { add, down, collector } = mesh();
    add("payments-1", "payments", "192.0.2.2:15000");
    add("payments-2", "payments", "192.0.2.3:15000");
    down.add("192.0.2.3:15000");
    await collector.scrapeAll();
    const r = collector.report(30_000);
    assert.deepEqual([r.services[0]!.proxies, r.services[0]!.meshed], [2, 1]);
    const bad = r.proxies.find((x) => x.proxy === "payments-2")!;
    assert.match(bad.error!, /^cannot scrape proxy payments-2 at http:\/\/192\.0\.2\.3:15000\/metrics: fetch failed: connection refused\.$/);
    down.clear();
    await collector.scrapeAll();
    assert.equal(collector.report(30_000).proxies.find((x) => x.proxy === "payments-2")!.error, null);
  });

  test("a proxy that registers is scraped at once; refresh reuses a scrape younger than a second", async () => {
    const { add, events, fetched, collector, clock } = mesh();
    add("orders-1", "orders", "192.0.2.1:15000");
    await collector.scrapeAll();
    assert.equal(fetched.length, 1);
    const stop = new AbortController();
    const running = collector.run(stop.signal);
    await flush();
    assert.equal(fetched.length, 2, "run() scrapes at start");
    add("payments-1", "payments", "192.0.2.2:15000");
    events.dispatchEvent(new Event("change"));
    await flush();
    assert.deepEqual(fetched.slice(2), ["http://192.0.2.2:15000/metrics"], "only the new proxy, at once");
    await collector.refresh();
    assert.equal(fetched.length, 3, "fresh enough: no new round");
    clock.advance(1_000);
    await flush();
    await collector.refresh();
    assert.ok(fetched.length >= 5, "a second later refresh scrapes every proxy");
    stop.abort();
    await running;
  });

  test("scrapes older than the retention are dropped, keeping one baseline", async () => {
    const clock = new FakeClock(T0);
    const reg = new Registry();
    createMeshMetrics(reg);
    const collector = new StatsCollector({
      proxies: () => [{ proxy: "a", service: "a", identity: id("a"), admin: "192.0.2.1:15000" }],
      clock,
      fetch: async () => new Response(reg.expose()),
      retentionMs: 10_000,
    });
    for (let i = 0; i < 6; i++) {
      await collector.scrapeAll();
      clock.advance(5_000);
    }
    const r = collector.report(10_000);
    assert.equal(r.proxies[0]!.rps, 0, "two scrapes or more remain in the window");
  });
});

async function flush(rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
