import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import type { Span } from "../../src/core/trace/span.ts";
import type { OtlpTracesRequest } from "../../src/core/trace/otlp-json.ts";
import { createOtlpExporter, tracesUrl } from "../../src/sidecar/tracing/otlp-exporter.ts";

/** A fake collector: records each POST, answers with the scripted status (or throws). */
function collector(script: (n: number) => number | "down" | "hang" = () => 200) {
  const posts: { url: string; method: string; contentType: string | null; body: OtlpTracesRequest }[] = [];
  const fakeFetch: typeof globalThis.fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const n = posts.length;
    posts.push({ url: String(input), method: init?.method ?? "GET", contentType: new Headers(init?.headers).get("content-type"), body: JSON.parse(String(init?.body)) as OtlpTracesRequest });
    const what = script(n);
    if (what === "down") throw new TypeError("fetch failed: connect ECONNREFUSED 192.0.2.9:4318");
    if (what === "hang") {
      return new Promise<Response>((_, reject) => init?.signal?.addEventListener("abort", () => reject(init.signal?.reason), { once: true }));
    }
    return new Response("{}", { status: what, headers: { "content-type": "application/json" } });
  }) as typeof globalThis.fetch;
  const spansOf = (i: number) => posts[i]?.body.resourceSpans[0]?.scopeSpans[0]?.spans.map((s) => s.spanId) ?? [];
  return { posts, fetch: fakeFetch, spansOf };
}

function recorder() {
  const lines: { level: string; msg: string | undefined; obj: object }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, msg, obj });
  return { lines, log: { info: at("info"), warn: at("warn"), error: at("error") } };
}

let next = 0;
function spans(n: number): Span[] {
  return Array.from({ length: n }, () => ({
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: (++next).toString(16).padStart(16, "0"),
    name: "POST /charge",
    kind: "CLIENT" as const,
    startMs: 1,
    endMs: 2,
    attributes: {},
    events: [],
    status: { code: "UNSET" as const },
  }));
}

const settle = () => new Promise<void>((r) => setTimeout(r, 0));

describe("tracesUrl", () => {
  test("a base URL gets /v1/traces; a URL with a path is used as is", () => {
    assert.equal(tracesUrl("http://192.0.2.9:4318"), "http://192.0.2.9:4318/v1/traces");
    assert.equal(tracesUrl("http://192.0.2.9:4318/"), "http://192.0.2.9:4318/v1/traces");
    assert.equal(tracesUrl("https://otel.example/custom/traces"), "https://otel.example/custom/traces");
  });

  test("anything but an http(s) URL is one sentence naming the field", () => {
    assert.throws(() => tracesUrl("localhost:4318"), /otlp_endpoint: "localhost:4318" must be an http:\/\/ or https:\/\/ URL/);
    assert.throws(() => tracesUrl("not a url", "--otlp-endpoint"), /--otlp-endpoint: "not a url" is not a URL/);
  });
});

describe("the OTLP exporter", () => {
  test("spans wait for the flush interval, then go out as one OTLP JSON POST", async () => {
    const clock = new FakeClock(0);
    const c = collector();
    const ex = createOtlpExporter({ endpoint: "http://192.0.2.9:4318", resource: { "service.name": "orders" }, clock, log: recorder().log, fetch: c.fetch });
    const batch = spans(3);
    ex.export(batch.slice(0, 2));
    ex.export(batch.slice(2));
    await settle();
    assert.equal(c.posts.length, 0, "nothing is sent before the interval");
    clock.advance(999);
    await settle();
    assert.equal(c.posts.length, 0);
    clock.advance(1);
    await settle();
    assert.equal(c.posts.length, 1);
    assert.equal(c.posts[0]?.url, "http://192.0.2.9:4318/v1/traces");
    assert.equal(c.posts[0]?.method, "POST");
    assert.equal(c.posts[0]?.contentType, "application/json");
    assert.deepEqual(c.posts[0]?.body.resourceSpans[0]?.resource.attributes, [{ key: "service.name", value: { stringValue: "orders" } }]);
    assert.deepEqual(c.spansOf(0), batch.map((s) => s.spanId));
    assert.equal(ex.exported, 3);
  });

  test("a full batch is sent at once, without waiting for the timer", async () => {
    const clock = new FakeClock(0);
    const c = collector();
    const ex = createOtlpExporter({ endpoint: "http://192.0.2.9:4318", resource: {}, clock, log: recorder().log, fetch: c.fetch, maxBatch: 4 });
    ex.export(spans(5));
    await settle();
    assert.deepEqual(c.posts.map((_, i) => c.spansOf(i).length), [4, 1], "one full batch and the rest, in order");
    assert.equal(ex.exported, 5);
  });

  test("export() never waits on the collector: a hanging collector leaves the caller free", async () => {
    const clock = new FakeClock(0);
    const c = collector(() => "hang");
    const ex = createOtlpExporter({ endpoint: "http://192.0.2.9:4318", resource: {}, clock, log: recorder().log, fetch: c.fetch, maxBatch: 1, maxQueue: 3, timeoutMs: 5_000 });
    ex.export(spans(1)); // in flight, hanging
    await settle();
    const returned = ex.export(spans(5)); // queued behind it: 3 fit, 2 are dropped
    assert.equal(returned, undefined);
    assert.equal(ex.dropped, 2);
    clock.advance(5_000); // the request timeout frees the exporter
    await settle();
    assert.ok(c.posts.length >= 2, "the queue moves on after the timeout");
  });

  test("the queue is bounded: past maxQueue new spans are dropped and counted, with one log line", async () => {
    const clock = new FakeClock(0);
    const c = collector();
    const r = recorder();
    const ex = createOtlpExporter({ endpoint: "http://192.0.2.9:4318", resource: {}, clock, log: r.log, fetch: c.fetch, maxBatch: 100, maxQueue: 100 });
    ex.export(spans(99));
    ex.export(spans(3)); // one fits (then the batch is full and goes), two are dropped
    assert.equal(ex.dropped, 2);
    await settle();
    ex.export(spans(1)); // the queue was sent: room again
    assert.equal(ex.dropped, 2);
    assert.equal(c.spansOf(0).length, 100);
    assert.equal(r.lines.filter((l) => l.msg?.includes("queue full")).length, 1);
  });

  test("a failing collector is logged once per outage; spans are dropped, never retried forever", async () => {
    const clock = new FakeClock(0);
    const script: ("down" | number)[] = ["down", 503, "down", 200, "down"];
    const c = collector((n) => script[n] ?? 200);
    const r = recorder();
    const ex = createOtlpExporter({ endpoint: "http://192.0.2.9:4318", resource: {}, clock, log: r.log, fetch: c.fetch });
    for (let i = 0; i < 5; i++) {
      ex.export(spans(2));
      await ex.flush();
    }
    assert.equal(c.posts.length, 5);
    assert.deepEqual(
      r.lines.map((l) => [l.level, l.msg]),
      [
        ["warn", "trace export failed; spans are dropped until the collector answers"],
        ["info", "trace export works again"],
        ["warn", "trace export failed; spans are dropped until the collector answers"],
      ],
    );
    assert.match(JSON.stringify(r.lines[0]?.obj), /ECONNREFUSED 192\.0\.2\.9:4318/);
    assert.equal(ex.exported, 2);
    assert.equal(ex.dropped, 8);
  });

  test("close() sends what is queued and drops what comes after", async () => {
    const clock = new FakeClock(0);
    const c = collector();
    const ex = createOtlpExporter({ endpoint: "http://192.0.2.9:4318", resource: {}, clock, log: recorder().log, fetch: c.fetch });
    ex.export(spans(2));
    await ex.close();
    assert.equal(c.spansOf(0).length, 2);
    ex.export(spans(1));
    clock.advance(10_000);
    await settle();
    assert.equal(c.posts.length, 1);
    assert.equal(ex.dropped, 1);
    assert.equal(clock.pending(), 0, "no timer left behind");
  });
});
