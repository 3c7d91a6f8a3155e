// The people-facing side of stats: `remora stat` tables, `remora tap` lines, and the
// dashboard server's relay (token kept server-side, read-only, loopback names only).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatStats, latency } from "../../src/cli/stat.ts";
import { formatTapLine } from "../../src/cli/tap.ts";
import { createDashboardHandler } from "../../src/cli/dashboard.ts";
import { RemoraError, isRemoraError } from "../../src/core/errors.ts";
import type { Golden, StatsReport } from "../../src/control/stats/types.ts";

const g = (o: Partial<Golden> = {}): Golden => ({ requests: 100, rps: 10, success: 0.99, latencyMs: { p50: 3.2, p95: 45, p99: 1250 }, retries: 3, ejected: 1, ...o });
const report: StatsReport = {
  time: "2026-01-01T00:00:10.000Z",
  windowSeconds: 30,
  services: [
    { name: "orders", proxies: 1, meshed: 1, ...g({ requests: 0, rps: 0, success: null, latencyMs: { p50: null, p95: null, p99: null }, retries: 0, ejected: 0 }), mtls: { mtls: 0, plaintext: 0, share: null } },
    { name: "payments", proxies: 2, meshed: 1, ...g(), mtls: { mtls: 95, plaintext: 5, share: 0.95 } },
  ],
  edges: [{ from: "orders", to: "payments", ...g({ success: 0.9 }) }],
  proxies: [
    { proxy: "payments-1", service: "payments", identity: "spiffe://cluster.local/ns/default/sa/payments", admin: "192.0.2.2:15000", ...g(), scraped: null, error: "cannot scrape proxy payments-1 at http://192.0.2.2:15000/metrics: refused.", mtls: { mtls: 0, plaintext: 0, share: null }, certExpiry: null, outbound: [], ejections: [], endpoints: [] },
    { proxy: "orders-1", service: "orders", identity: "spiffe://cluster.local/ns/default/sa/orders", admin: "192.0.2.1:15000", ...g(), scraped: "2026-01-01T00:00:10.000Z", error: null, mtls: { mtls: 0, plaintext: 0, share: null }, certExpiry: null, outbound: [{ to: "payments", ...g() }], ejections: [], endpoints: [] },
  ],
};

describe("remora stat tables", () => {
  test("services then edges, numbers right-aligned, unknowns as -", () => {
    assert.equal(
      formatStats(report),
      [
        "NAME      MESHED  SUCCESS   RPS  LATENCY_P50  LATENCY_P95  LATENCY_P99  RETRIES  EJECTED  MTLS",
        "orders    1/1           -   0.0            -            -            -        0        0     -",
        "payments  1/2      99.00%  10.0        3.2ms         45ms        1.25s        3        1   95%",
        "",
        "EDGES",
        "FROM    TO        SUCCESS   RPS  LATENCY_P50  LATENCY_P95  LATENCY_P99  RETRIES  EJECTED",
        "orders  payments   90.00%  10.0        3.2ms         45ms        1.25s        3        1",
        "",
        "cannot scrape proxy payments-1 at http://192.0.2.2:15000/metrics: refused.",
      ].join("\n"),
    );
  });

  test("a proxy name shows that proxy and its outbound calls", () => {
    const out = formatStats(report, "orders-1");
    assert.match(out, /^PROXY\s+SERVICE\s+SCRAPED\s+SUCCESS/);
    assert.match(out, /^orders-1\s+orders\s+yes\s+99\.00%/m);
    assert.match(out, /^OUTBOUND$/m);
    assert.match(out, /^orders\s+payments\s+99\.00%/m);
  });

  test("an unknown name is one sentence", () => {
    assert.throws(() => formatStats(report, "nosuch"), (e: unknown) => isRemoraError(e, "ERR_NOT_FOUND") && /no service or proxy named "nosuch"/.test(e.message));
  });

  test("latency units", () => {
    assert.deepEqual([latency(null), latency(0.84), latency(12.4), latency(1500)], ["-", "0.8ms", "12ms", "1.50s"]);
  });
});

describe("remora tap lines", () => {
  test("time, caller -> callee, method path, status, latency, where it was seen", () => {
    const line = formatTapLine({
      type: "request", time: "2026-01-01T12:00:01.123Z", direction: "inbound", proxy: "payments-1", caller: "spiffe://cluster.local/ns/default/sa/orders",
      callee: "payments", calleeIdentity: null, method: "POST", path: "/charge", status: 200, latencyMs: 12.3, mtls: true, upstream: null, traceId: null,
    });
    assert.equal(line, "12:00:01.123  spiffe://cluster.local/ns/default/sa/orders -> payments  POST /charge  200  12ms  (inbound at payments-1)");
    assert.match(formatTapLine({ type: "request", time: "2026-01-01T12:00:01.123Z", direction: "outbound", proxy: "orders-1", caller: null, callee: "payments", calleeIdentity: null, method: "GET", path: "/", status: null, latencyMs: 1, mtls: false, upstream: null, traceId: null }), /\(plaintext\) -> payments  GET \/  ---  1\.0ms/);
  });
});

describe("dashboard server", () => {
  async function dashboard() {
    const asked: string[] = [];
    const handler = await createDashboardHandler({
      controlUrl: "https://192.0.2.10:15010",
      control: async (path) => {
        asked.push(path);
        if (path === "/v1/endpoints") throw new RemoraError("ERR_CONTROL_UNREACHABLE", "cannot reach the control plane at https://192.0.2.10:15010: connection refused.");
        return { path };
      },
    });
    return { asked, get: (url: string, method = "GET") => handler(new Request(url, { method })) };
  }

  test("the page: one document, its own CSP, no token in it", async () => {
    const { get } = await dashboard();
    const res = await get("http://127.0.0.1:15080/");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^text\/html/);
    assert.match(res.headers.get("content-security-policy")!, /default-src 'none'; script-src 'sha256-[A-Za-z0-9+/=]+'; style-src 'sha256-/);
    const html = await res.text();
    assert.match(html, /<title>remora dashboard<\/title>/);
    assert.match(html, /https:\/\/192\.0\.2\.10:15010/);
    assert.doesNotMatch(html, /https?:\/\/(?!192\.0\.2\.10|www\.w3\.org)[a-z]/i, "no CDN or other origin");
  });

  test("relays only the read-only APIs; passes the window; failures are one sentence", async () => {
    const { get, asked } = await dashboard();
    assert.deepEqual(await (await get("http://localhost:15080/api/stats?window=10s")).json(), { path: "/v1/stats?window=10s" });
    assert.deepEqual(await (await get("http://127.0.0.1:15080/api/proxies")).json(), { path: "/v1/proxies" });
    const down = await get("http://127.0.0.1:15080/api/endpoints");
    assert.equal(down.status, 502);
    assert.match(((await down.json()) as { error: string }).error, /^cannot reach the control plane/);
    assert.equal((await get("http://127.0.0.1:15080/api/tokens")).status, 404);
    assert.equal((await get("http://127.0.0.1:15080/api/stats?window=1s%26x")).status, 400);
    assert.equal((await get("http://127.0.0.1:15080/api/stats", "POST")).status, 405);
    assert.deepEqual(asked, ["/v1/stats?window=10s", "/v1/proxies", "/v1/endpoints"]);
  });

  test("a DNS name other than localhost is refused (DNS rebinding)", async () => {
    const { get, asked } = await dashboard();
    assert.equal((await get("http://evil.example:15080/api/stats")).status, 403);
    assert.equal((await get("http://[::1]:15080/")).status, 200);
    assert.deepEqual(asked, []);
  });
});
