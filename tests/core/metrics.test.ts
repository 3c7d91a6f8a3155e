import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { MeshEvent } from "../../src/core/events.ts";
import { formatFloat } from "../../src/core/metrics/exposition.ts";
import { codeClass, createMeshMetrics, recordEvent } from "../../src/core/metrics/mesh-metrics.ts";
import { quantile, sumHistograms } from "../../src/core/metrics/quantile.ts";
import { CONTENT_TYPE, DEFAULT_LATENCY_BUCKETS, Registry } from "../../src/core/metrics/registry.ts";
import type { HistogramSnapshot } from "../../src/core/metrics/registry.ts";

describe("exposition text", () => {
  test("content type is 0.0.4", () => {
    assert.equal(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
  });

  test("counter: HELP, TYPE, one line per series sorted by label values, trailing newline", () => {
    const r = new Registry();
    const c = r.counter({ name: "x_requests_total", help: "Requests.", labelNames: ["code", "method"] });
    c.inc({ method: "post", code: "200" });
    c.inc({ code: "200", method: "post" }, 2);
    c.inc({ code: "200", method: "get" }, 0.5);
    assert.equal(
      r.expose(),
      "# HELP x_requests_total Requests.\n" +
        "# TYPE x_requests_total counter\n" +
        'x_requests_total{code="200",method="get"} 0.5\n' +
        'x_requests_total{code="200",method="post"} 3\n',
    );
    assert.equal(c.get({ code: "200", method: "post" }), 3);
  });

  test("a family without labels shows one series at 0 from the start", () => {
    const r = new Registry();
    r.counter({ name: "a_total", help: "A." });
    const g = r.gauge({ name: "b", help: "B." });
    assert.equal(r.expose(), "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b B.\n# TYPE b gauge\nb 0\n");
    g.set(undefined, -2.5);
    assert.match(r.expose(), /\nb -2\.5\n$/);
  });

  test("a labelled family with no series yet shows only HELP and TYPE", () => {
    const r = new Registry();
    r.counter({ name: "c_total", help: "C.", labelNames: ["x"] });
    assert.equal(r.expose(), "# HELP c_total C.\n# TYPE c_total counter\n");
  });

  test("gauge: set, inc, dec", () => {
    const r = new Registry();
    const g = r.gauge({ name: "inflight", help: "In flight.", labelNames: ["d"] });
    g.set({ d: "a" }, 10);
    g.inc({ d: "a" });
    g.inc({ d: "a" }, 4);
    g.dec({ d: "a" }, 3);
    g.dec({ d: "b" });
    assert.equal(r.expose(), '# HELP inflight In flight.\n# TYPE inflight gauge\ninflight{d="a"} 12\ninflight{d="b"} -1\n');
  });

  test("histogram: cumulative buckets with Go-style le, +Inf, _sum, _count", () => {
    const r = new Registry();
    const h = r.histogram({ name: "lat_seconds", help: "Latency.", labelNames: ["cluster"], buckets: [0.05, 0.1, 1] });
    for (const v of [0.01, 0.05, 0.07, 0.5, 2, 3]) h.observe({ cluster: "api" }, v);
    assert.equal(
      r.expose(),
      "# HELP lat_seconds Latency.\n" +
        "# TYPE lat_seconds histogram\n" +
        'lat_seconds_bucket{cluster="api",le="0.05"} 2\n' +
        'lat_seconds_bucket{cluster="api",le="0.1"} 3\n' +
        'lat_seconds_bucket{cluster="api",le="1"} 4\n' +
        'lat_seconds_bucket{cluster="api",le="+Inf"} 6\n' +
        'lat_seconds_sum{cluster="api"} 5.63\n' +
        'lat_seconds_count{cluster="api"} 6\n',
    );
  });

  test("histogram without labels, never observed", () => {
    const r = new Registry();
    r.histogram({ name: "h", help: "H.", buckets: [1, 2] });
    assert.equal(
      r.expose(),
      '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 0\nh_bucket{le="2"} 0\nh_bucket{le="+Inf"} 0\nh_sum 0\nh_count 0\n',
    );
  });

  test("bucket counts never decrease and +Inf equals _count, for any observations", () => {
    const r = new Registry();
    const h = r.histogram({ name: "d_seconds", help: "D." });
    let seed = 7;
    for (let i = 0; i < 500; i++) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      h.observe(undefined, (seed / 2 ** 31) * 12);
    }
    h.observe(undefined, NaN);
    const lines = r.expose().split("\n").filter((l) => l.startsWith("d_seconds_bucket"));
    const counts = lines.map((l) => Number(l.split(" ")[1]));
    assert.equal(lines.length, DEFAULT_LATENCY_BUCKETS.length + 1);
    for (let i = 1; i < counts.length; i++) assert.ok((counts[i] ?? 0) >= (counts[i - 1] ?? 0), `bucket ${i} decreased`);
    assert.equal(counts.at(-1), 500);
    assert.match(r.expose(), /\nd_seconds_count 500\n$/);
    const snap = h.get();
    assert.equal(snap.count, 500);
    assert.ok(Number.isFinite(snap.sum));
  });

  test("an observation equal to a bound falls in that bucket (le is inclusive)", () => {
    const r = new Registry();
    const h = r.histogram({ name: "e", help: "E.", buckets: [1, 2] });
    h.observe(undefined, 1);
    assert.deepEqual(h.get().buckets, [{ le: 1, count: 1 }, { le: 2, count: 1 }]);
  });

  test("default latency buckets run from 0.5 ms to 10 s and are rendered Go-style", () => {
    assert.equal(DEFAULT_LATENCY_BUCKETS[0], 0.0005);
    assert.equal(DEFAULT_LATENCY_BUCKETS.at(-1), 10);
    const r = new Registry();
    r.histogram({ name: "l", help: "L." });
    const les = [...r.expose().matchAll(/le="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(les, ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"]);
  });

  test("label values escape backslash, quote and newline; HELP escapes backslash and newline", () => {
    const r = new Registry();
    const c = r.counter({ name: "esc_total", help: 'Path C:\\dir\nsecond "line"', labelNames: ["v"] });
    c.inc({ v: 'a\\b"c\nd é' });
    assert.equal(
      r.expose(),
      '# HELP esc_total Path C:\\\\dir\\nsecond "line"\n' + "# TYPE esc_total counter\n" + 'esc_total{v="a\\\\b\\"c\\nd é"} 1\n',
    );
  });

  test("families stay contiguous, in registration order, whatever order series are touched", () => {
    const r = new Registry();
    const a = r.counter({ name: "a_total", help: "A.", labelNames: ["k"] });
    const b = r.counter({ name: "b_total", help: "B.", labelNames: ["k"] });
    b.inc({ k: "1" });
    a.inc({ k: "1" });
    b.inc({ k: "2" });
    a.inc({ k: "2" });
    const names = r
      .expose()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#"))
      .map((l) => l.split("{")[0]);
    assert.deepEqual(names, ["a_total", "a_total", "b_total", "b_total"]);
  });

  test("numbers are written as Go's FormatFloat(f, 'g', -1)", () => {
    const cases: [number, string][] = [
      [0, "0"],
      [1, "1"],
      [-1, "-1"],
      [0.1, "0.1"],
      [0.0001, "0.0001"],
      [0.00001, "1e-05"],
      [123456, "123456"],
      [1e6, "1e+06"],
      [1234567, "1.234567e+06"],
      [1e21, "1e+21"],
      [1.5e-7, "1.5e-07"],
      [1e100, "1e+100"],
      [NaN, "NaN"],
      [Infinity, "+Inf"],
      [-Infinity, "-Inf"],
    ];
    for (const [n, s] of cases) assert.equal(formatFloat(n), s, String(n));
  });

  test("misuse is refused: bad names, wrong labels, negative counter steps, clashing families, bad buckets", () => {
    const r = new Registry();
    assert.throws(() => r.counter({ name: "1bad", help: "" }), TypeError);
    assert.throws(() => r.counter({ name: "ok_total", help: "", labelNames: ["__x"] }), TypeError);
    const c = r.counter({ name: "c_total", help: "C.", labelNames: ["a"] });
    assert.throws(() => c.inc({ b: "x" } as never), /c_total takes labels \{a\}, got \{b\}/);
    assert.throws(() => c.inc(), TypeError);
    assert.throws(() => c.inc({ a: "x" }, -1), TypeError);
    assert.throws(() => r.gauge({ name: "c_total", help: "" }), /clashes/);
    r.histogram({ name: "h", help: "H." });
    assert.throws(() => r.counter({ name: "h_count", help: "" }), /clashes/);
    assert.throws(() => r.histogram({ name: "h2", help: "", buckets: [1, 1] }), TypeError);
    assert.throws(() => r.histogram({ name: "h3", help: "", labelNames: ["le"] }), TypeError);
  });

  test("remove forgets a series", () => {
    const r = new Registry();
    const g = r.gauge({ name: "g", help: "G.", labelNames: ["e"] });
    g.set({ e: "192.0.2.1:15006" }, 1);
    g.set({ e: "192.0.2.2:15006" }, 1);
    g.remove({ e: "192.0.2.1:15006" });
    assert.equal(r.expose(), '# HELP g G.\n# TYPE g gauge\ng{e="192.0.2.2:15006"} 1\n');
    // Used again, it starts afresh and is exposed again.
    g.set({ e: "192.0.2.1:15006" }, 5);
    assert.equal(g.get({ e: "192.0.2.1:15006" }), 5);
    assert.match(r.expose(), /g\{e="192\.0\.2\.1:15006"\} 5\n/);
  });

  test("series with several labels are told apart by every value, and removed one at a time", () => {
    const r = new Registry();
    const c = r.counter({ name: "c_total", help: "C.", labelNames: ["d", "e", "k"] });
    c.inc({ d: "payments", e: "a", k: "2xx" });
    c.inc({ d: "payments", e: "a", k: "5xx" }, 2);
    c.inc({ d: "payments", e: "b", k: "2xx" }, 3);
    c.inc({ d: "ledger", e: "a", k: "2xx" }, 4);
    assert.deepEqual([c.get({ d: "payments", e: "a", k: "2xx" }), c.get({ d: "payments", e: "a", k: "5xx" }), c.get({ d: "payments", e: "b", k: "2xx" }), c.get({ d: "ledger", e: "a", k: "2xx" })], [1, 2, 3, 4]);
    c.remove({ d: "payments", e: "a", k: "5xx" });
    assert.doesNotMatch(r.expose(), /k="5xx"/);
    assert.equal(c.get({ d: "payments", e: "a", k: "2xx" }), 1);
    c.inc({ d: "payments", e: "a", k: "5xx" });
    assert.equal(c.get({ d: "payments", e: "a", k: "5xx" }), 1, "counted afresh after its removal");
  });
});

describe("JSON snapshot and quantiles", () => {
  test("snapshot lists every family and series as plain data", () => {
    const r = new Registry();
    r.counter({ name: "a_total", help: "A.", labelNames: ["k"] }).inc({ k: "x" }, 3);
    const h = r.histogram({ name: "h_seconds", help: "H.", labelNames: ["d"], buckets: [0.1, 1] });
    h.observe({ d: "p" }, 0.05);
    h.observe({ d: "p" }, 5);
    const snap = r.snapshot();
    assert.deepEqual(snap, [
      { name: "a_total", help: "A.", type: "counter", series: [{ labels: { k: "x" }, value: 3 }] },
      {
        name: "h_seconds",
        help: "H.",
        type: "histogram",
        series: [{ labels: { d: "p" }, buckets: [{ le: 0.1, count: 1 }, { le: 1, count: 1 }], count: 2, sum: 5.05 }],
      },
    ]);
    assert.deepEqual(JSON.parse(JSON.stringify(snap)), snap);
  });

  // Prometheus docs' example: 40 observations, 24 <= 0.05, 33 <= 0.1.
  const example: HistogramSnapshot = {
    buckets: [
      { le: 0.05, count: 24 },
      { le: 0.1, count: 33 },
      { le: 0.5, count: 40 },
    ],
    count: 40,
    sum: 2.7,
  };

  test("quantile interpolates linearly inside the bucket, first bucket starting at 0", () => {
    assert.equal(quantile(example, 0.5), 0.05 * (20 / 24));
    assert.ok(Math.abs(quantile(example, 0.75) - (0.05 + 0.05 * ((30 - 24) / 9))) < 1e-12);
    assert.ok(Math.abs(quantile(example, 0.9) - (0.1 + 0.4 * ((36 - 33) / 7))) < 1e-12);
    assert.equal(quantile(example, 1), 0.5);
  });

  test("a rank in the +Inf bucket gives the largest finite bound", () => {
    const h: HistogramSnapshot = { buckets: [{ le: 0.1, count: 1 }, { le: 1, count: 2 }], count: 10, sum: 50 };
    assert.equal(quantile(h, 0.99), 1);
  });

  test("edge cases follow histogram_quantile", () => {
    assert.ok(Number.isNaN(quantile({ buckets: [{ le: 1, count: 0 }], count: 0, sum: 0 }, 0.5)));
    assert.equal(quantile(example, -0.1), -Infinity);
    assert.equal(quantile(example, 1.1), Infinity);
    assert.ok(Number.isNaN(quantile(example, NaN)));
  });

  test("quantile of a live histogram", () => {
    const r = new Registry();
    const h = r.histogram({ name: "q", help: "Q.", buckets: [0.01, 0.02, 0.04] });
    for (let i = 0; i < 100; i++) h.observe(undefined, i < 50 ? 0.005 : 0.015);
    assert.equal(quantile(h.get(), 0.5), 0.01);
    assert.equal(quantile(h.get(), 0.75), 0.015);
  });

  test("sumHistograms adds series with the same buckets and refuses different ones", () => {
    const s = sumHistograms([example, example]);
    assert.deepEqual(s.buckets.map((b) => b.count), [48, 66, 80]);
    assert.equal(s.count, 80);
    assert.equal(quantile(s, 0.5), quantile(example, 0.5));
    assert.throws(() => sumHistograms([example, { buckets: [{ le: 1, count: 0 }], count: 0, sum: 0 }]), TypeError);
  });
});

describe("mesh metrics", () => {
  const setup = () => {
    const registry = new Registry();
    const m = createMeshMetrics(registry);
    return { registry, m, text: () => registry.expose() };
  };
  const base = { requestId: "r1", destination: "payments" };
  const B1 = "192.0.2.1:15006";
  const B2 = "192.0.2.2:15006";

  test("defines remora's families with their labels", () => {
    const { text } = setup();
    const types = [...text().matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(types, [
      "remora_requests_total counter",
      "remora_request_duration_seconds histogram",
      "remora_retries_total counter",
      "remora_retries_abandoned_total counter",
      "remora_outlier_ejections_total counter",
      "remora_endpoints_ejected gauge",
      "remora_upstream_cx_total counter",
      "remora_tls_handshakes_total counter",
      "remora_cert_expiry_timestamp_seconds gauge",
      "remora_inbound_denied_total counter",
      "remora_inbound_tls_requests_total counter",
      "remora_faults_injected_total counter",
      "remora_mirrored_requests_total counter",
      "remora_rate_limited_total counter",
      "remora_retries_budget_exhausted_total counter",
      "remora_overflow_total counter",
      "remora_tcp_connections_total counter",
      "remora_tcp_bytes_total counter",
      "remora_tcp_active_connections gauge",
      "remora_grpc_responses_total counter",
    ]);
  });

  test("codeClass", () => {
    assert.deepEqual([200, 204, 301, 404, 503, 599].map(codeClass), ["2xx", "2xx", "3xx", "4xx", "5xx", "5xx"]);
  });

  test("response: outbound request by class, and its latency in seconds", () => {
    const { m, text } = setup();
    recordEvent(m, { type: "response", ...base, endpoint: B2, status: 200, attempts: 2, durationMs: 30 });
    recordEvent(m, { type: "response", ...base, status: 503, attempts: 3, durationMs: 2 });
    assert.equal(m.requests.get({ direction: "outbound", destination: "payments", code_class: "2xx" }), 1);
    assert.equal(m.requests.get({ direction: "outbound", destination: "payments", code_class: "5xx" }), 1);
    const h = m.duration.get({ direction: "outbound", destination: "payments" });
    assert.equal(h.count, 2);
    assert.equal(h.sum, 0.032);
    assert.match(text(), /^remora_request_duration_seconds_bucket\{direction="outbound",destination="payments",le="0.025"\} 1$/m);
    assert.match(text(), /^remora_request_duration_seconds_bucket\{direction="outbound",destination="payments",le="0.05"\} 2$/m);
  });

  test("retry and retry-abandoned count per destination", () => {
    const { m } = setup();
    recordEvent(m, { type: "retry", ...base, attempt: 2, reason: "reset", backoffMs: 10 });
    recordEvent(m, { type: "retry", ...base, attempt: 3, reason: "5xx", backoffMs: 30 });
    recordEvent(m, { type: "retry-abandoned", ...base, reason: "body larger than 65536 bytes" });
    assert.equal(m.retries.get({ destination: "payments" }), 2);
    assert.equal(m.retriesAbandoned.get({ destination: "payments" }), 1);
  });

  test("connection: new (with a TLS handshake) or reused", () => {
    const { m } = setup();
    recordEvent(m, { type: "connection", ...base, endpoint: B2, attempt: 1, info: { reused: false, handshakeMs: 3, peerIdentity: "spiffe://cluster.local/ns/default/sa/payments" } });
    recordEvent(m, { type: "connection", ...base, endpoint: B2, attempt: 1, info: { reused: true } });
    recordEvent(m, { type: "connection", ...base, endpoint: B2, attempt: 1, info: { reused: false } });
    assert.equal(m.upstreamCx.get({ destination: "payments", endpoint: B2, result: "new" }), 2);
    assert.equal(m.upstreamCx.get({ destination: "payments", endpoint: B2, result: "reused" }), 1);
    assert.equal(m.tlsHandshakes.get({ direction: "outbound", result: "success" }), 1);
  });

  test("attempt-failed: connection failures by kind; TLS failures also count a failed handshake", () => {
    const { m } = setup();
    const fail = (kind: Extract<MeshEvent, { type: "attempt-failed" }>["kind"], status?: number) =>
      recordEvent(m, { type: "attempt-failed", ...base, endpoint: B1, attempt: 1, kind, message: "x", durationMs: 1, ...(status ? { status } : {}) });
    fail("connect-failure");
    fail("reset");
    fail("reset");
    fail("timeout");
    fail("tls");
    fail("status", 503);
    fail("refused-stream");
    fail("overflow");
    const cx = (result: string) => m.upstreamCx.get({ destination: "payments", endpoint: B1, result });
    assert.deepEqual(
      ["connect_failure", "reset", "timeout", "tls"].map(cx),
      [1, 2, 1, 1],
    );
    assert.equal(m.tlsHandshakes.get({ direction: "outbound", result: "failure" }), 1);
    const cxSeries = m.upstreamCx.snapshot().series.length;
    assert.equal(cxSeries, 4, "status, refused-stream and overflow are not connection results");
  });

  test("eject, uneject and resolve drive the ejection counter and gauge", () => {
    const { m } = setup();
    const ejected = () => m.endpointsEjected.get({ destination: "payments" });
    recordEvent(m, { type: "eject", destination: "payments", endpoint: B1, reason: "consecutive_5xx", untilMs: 30_000, ejectionCount: 1 });
    assert.equal(m.outlierEjections.get({ destination: "payments", endpoint: B1 }), 1);
    assert.equal(ejected(), 1);
    recordEvent(m, { type: "eject", destination: "payments", endpoint: B2, reason: "consecutive_gateway_failure", untilMs: 30_000, ejectionCount: 1 });
    assert.equal(ejected(), 2);
    recordEvent(m, { type: "uneject", destination: "payments", endpoint: B1 });
    assert.equal(ejected(), 1);
    recordEvent(m, { type: "uneject", destination: "payments", endpoint: B2 });
    recordEvent(m, { type: "uneject", destination: "payments", endpoint: B2 });
    assert.equal(ejected(), 0, "never below zero");
    recordEvent(m, {
      type: "resolve",
      ...base,
      endpoints: [
        { address: B1, available: false },
        { address: B2, available: true },
      ],
    });
    assert.equal(ejected(), 1);
  });

  test("pick changes nothing", () => {
    const { m, text } = setup();
    const before = text();
    recordEvent(m, { type: "pick", ...base, endpoint: B1, attempt: 1, balancer: "round_robin" });
    assert.equal(text(), before);
  });

  test("the reference scenario's events expose as expected", () => {
    const { m, text } = setup();
    const events: MeshEvent[] = [
      { type: "resolve", ...base, endpoints: [{ address: B1, available: true }, { address: B2, available: true }] },
      { type: "pick", ...base, endpoint: B1, attempt: 1, balancer: "round_robin" },
      { type: "attempt-failed", ...base, endpoint: B1, attempt: 1, kind: "connect-failure", message: "reset during handshake", durationMs: 2 },
      { type: "retry", ...base, attempt: 2, reason: "connect-failure", backoffMs: 12 },
      { type: "pick", ...base, endpoint: B2, attempt: 2, balancer: "round_robin" },
      { type: "connection", ...base, endpoint: B2, attempt: 2, info: { reused: false, handshakeMs: 4, peerIdentity: "spiffe://cluster.local/ns/default/sa/payments" } },
      { type: "response", ...base, endpoint: B2, status: 200, attempts: 2, durationMs: 30 },
      { type: "eject", destination: "payments", endpoint: B1, reason: "consecutive_5xx", untilMs: 30_000, ejectionCount: 1 },
    ];
    for (const e of events) recordEvent(m, e);
    m.certExpiry.set({ identity: "spiffe://cluster.local/ns/default/sa/orders" }, 1_700_000_000);
    m.inboundDenied.inc({ reason: "handshake" });
    const samples = text()
      .split("\n")
      .filter((l) => l !== "" && !l.startsWith("#") && !l.includes("_bucket"));
    assert.deepEqual(samples, [
      'remora_requests_total{direction="outbound",destination="payments",code_class="2xx"} 1',
      'remora_request_duration_seconds_sum{direction="outbound",destination="payments"} 0.03',
      'remora_request_duration_seconds_count{direction="outbound",destination="payments"} 1',
      'remora_retries_total{destination="payments"} 1',
      `remora_outlier_ejections_total{destination="payments",endpoint="${B1}"} 1`,
      'remora_endpoints_ejected{destination="payments"} 1',
      `remora_upstream_cx_total{destination="payments",endpoint="${B1}",result="connect_failure"} 1`,
      `remora_upstream_cx_total{destination="payments",endpoint="${B2}",result="new"} 1`,
      'remora_tls_handshakes_total{direction="outbound",result="success"} 1',
      'remora_cert_expiry_timestamp_seconds{identity="spiffe://cluster.local/ns/default/sa/orders"} 1.7e+09',
      'remora_inbound_denied_total{reason="handshake"} 1',
    ]);
    assert.ok(text().endsWith("\n"));
  });
});
