import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { histogramSeries, labelKey, parseExposition } from "../../src/core/metrics/parse.ts";
import { quantile } from "../../src/core/metrics/quantile.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import { createMeshMetrics } from "../../src/core/metrics/mesh-metrics.ts";
import { isRemoraError } from "../../src/core/errors.ts";

describe("parseExposition", () => {
  test("the format's own example: HELP, TYPE, histogram buckets grouped under the family", () => {
    const text =
      "# HELP mesh_request_duration_seconds Upstream request latency.\n" +
      "# TYPE mesh_request_duration_seconds histogram\n" +
      'mesh_request_duration_seconds_bucket{cluster="api",le="0.05"} 24\n' +
      'mesh_request_duration_seconds_bucket{cluster="api",le="0.1"} 33\n' +
      'mesh_request_duration_seconds_bucket{cluster="api",le="+Inf"} 40\n' +
      'mesh_request_duration_seconds_sum{cluster="api"} 2.7\n' +
      'mesh_request_duration_seconds_count{cluster="api"} 40\n';
    const fams = parseExposition(text);
    assert.deepEqual([...fams.keys()], ["mesh_request_duration_seconds"]);
    const f = fams.get("mesh_request_duration_seconds")!;
    assert.equal(f.type, "histogram");
    assert.equal(f.help, "Upstream request latency.");
    assert.equal(f.samples.length, 5);
    const [h] = histogramSeries(f);
    assert.deepEqual(h, {
      labels: { cluster: "api" },
      buckets: [
        { le: 0.05, count: 24 },
        { le: 0.1, count: 33 },
      ],
      count: 40,
      sum: 2.7,
    });
  });

  test("label escapes, trailing comma, spaces, timestamps, special floats, comments", () => {
    const text = [
      "# a plain comment",
      "# TYPE x counter",
      'x{path="C:\\\\dir",q="say \\"hi\\"",nl="a\\nb",} 1.5e3 1700000000000',
      "",
      "  y   NaN  ",
      "z{} +Inf",
      "w -inf",
      "v .5",
    ].join("\n");
    const fams = parseExposition(text);
    const x = fams.get("x")!.samples[0]!;
    assert.deepEqual(x.labels, { path: "C:\\dir", q: 'say "hi"', nl: "a\nb" });
    assert.equal(x.value, 1500);
    assert.equal(x.timestampMs, 1_700_000_000_000);
    assert.ok(Number.isNaN(fams.get("y")!.samples[0]!.value));
    assert.equal(fams.get("y")!.type, "untyped");
    assert.equal(fams.get("z")!.samples[0]!.value, Infinity);
    assert.equal(fams.get("w")!.samples[0]!.value, -Infinity);
    assert.equal(fams.get("v")!.samples[0]!.value, 0.5);
  });

  test("HELP unescapes backslash and newline", () => {
    const f = parseExposition("# HELP a one\\ntwo \\\\ three\n# TYPE a gauge\na 1\n").get("a")!;
    assert.equal(f.help, "one\ntwo \\ three");
    assert.equal(f.type, "gauge");
  });

  test("_count and _sum without a histogram TYPE are families of their own", () => {
    const fams = parseExposition("x_count 3\nx_sum 2\n");
    assert.deepEqual([...fams.keys()], ["x_count", "x_sum"]);
  });

  test("summary samples belong to the summary family", () => {
    const text = '# TYPE s summary\ns{quantile="0.5"} 1\ns_sum 4\ns_count 2\n';
    assert.equal(parseExposition(text).get("s")!.samples.length, 3);
  });

  test("round trip: what the registry exposes parses back to the same values", () => {
    const r = new Registry();
    const m = createMeshMetrics(r);
    m.requests.inc({ direction: "outbound", destination: "payments", code_class: "2xx" }, 7);
    m.requests.inc({ direction: "outbound", destination: 'we"ird\nname', code_class: "5xx" });
    for (const s of [0.003, 0.004, 0.02, 0.2]) m.duration.observe({ direction: "outbound", destination: "payments" }, s);
    const fams = parseExposition(r.expose());
    const reqs = fams.get("remora_requests_total")!;
    assert.equal(reqs.type, "counter");
    assert.deepEqual(
      reqs.samples.map((s) => [s.labels.destination, s.value]),
      [["payments", 7], ['we"ird\nname', 1]],
    );
    const [h] = histogramSeries(fams.get("remora_request_duration_seconds")!);
    const original = m.duration.get({ direction: "outbound", destination: "payments" });
    assert.deepEqual(h!.buckets, original.buckets);
    assert.equal(h!.count, 4);
    assert.equal(quantile(h!, 0.5), quantile(original, 0.5));
  });

  test("histogram without _count takes its count from the +Inf bucket", () => {
    const text = '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 5\n';
    const [h] = histogramSeries(parseExposition(text).get("h")!);
    assert.equal(h!.count, 5);
    assert.deepEqual(h!.buckets, [{ le: 1, count: 2 }]);
  });

  for (const [name, text, fragment] of [
    ["bad value", "x abc\n", '"abc" is not a number'],
    ["no value", "x\n", "expected a space before the value"],
    ["unterminated label", 'x{a="b} 1\n', "unterminated value of label a"],
    ["unknown type", "# TYPE x meter\n", '"meter" is not a metric type'],
    ["TYPE after samples", "x 1\n# TYPE x counter\n", "TYPE for x comes after its samples"],
    ["bad escape", 'x{a="\\t"} 1\n', "unknown escape"],
    ["duplicate label", 'x{a="1",a="2"} 1\n', "label a appears twice"],
    ["bad timestamp", "x 1 soon\n", '"soon" is not a timestamp'],
  ] as const) {
    test(`refuses ${name} with one sentence naming source and line`, () => {
      assert.throws(
        () => parseExposition(`# ok\n${text}`, "http://192.0.2.1:15000/metrics"),
        (e: unknown) => isRemoraError(e, "ERR_METRICS") && /^http:\/\/192\.0\.2\.1:15000\/metrics line [23]: /.test(e.message) && e.message.includes(fragment),
      );
    });
  }

  test("labelKey is independent of label order", () => {
    assert.equal(labelKey({ b: "2", a: "1" }), labelKey({ a: "1", b: "2" }));
    assert.notEqual(labelKey({ a: "1,b=2" }), labelKey({ a: "1", b: "2" }));
  });
});
