// gRPC in the core: retry_on's gRPC conditions (Envoy's x-envoy-retry-grpc-on), the
// grpc-timeout header bounding the whole call, streaming request bodies that stay
// replayable, and trailers carried through stages that rebuild a Response.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createOutbound } from "../../src/core/pipeline.ts";
import { parsePolicy, policyToDocument } from "../../src/core/policy/parse.ts";
import type { Policy } from "../../src/core/policy/types.ts";
import { formatGrpcTimeout, parseGrpcTimeout } from "../../src/core/grpc-timeout.ts";
import { encodeGrpcMessage, grpcRetryCondition, grpcStatusOf, isGrpc } from "../../src/core/retry/grpc.ts";
import { isRetriable } from "../../src/core/retry/classify.ts";
import { attachTrailers, trailersOf } from "../../src/core/trailers.ts";
import type { Upstream } from "../../src/core/upstream.ts";
import { isRemoraError } from "../../src/core/errors.ts";
import { B1, B2, endpoints, harness, policy } from "./fake-upstream.ts";

const GRPC = { "content-type": "application/grpc", te: "trailers" };
const grpcCall = (headers: Record<string, string> = {}) =>
  new Request("http://payments/pkg.Payments/Charge", { method: "POST", body: "msg", headers: { ...GRPC, ...headers } });
/** A trailers-only gRPC answer: status in the head, no body. */
const trailersOnly = (code: number) => () => new Response(null, { status: 200, headers: { "content-type": "application/grpc", "grpc-status": String(code) } });
/** A normal gRPC answer: a message, then grpc-status in the trailers. */
const withTrailers = (code: number, body = "reply") => () =>
  attachTrailers(new Response(body, { status: 200, headers: { "content-type": "application/grpc" } }), Promise.resolve(new Headers({ "grpc-status": String(code), "x-trace": "t1" })));

describe("grpc-timeout header (gRPC PROTOCOL-HTTP2.md)", () => {
  test("every unit, in whole milliseconds, sub-millisecond values rounded up", () => {
    assert.equal(parseGrpcTimeout("2H"), 7_200_000);
    assert.equal(parseGrpcTimeout("3M"), 180_000);
    assert.equal(parseGrpcTimeout("5S"), 5_000);
    assert.equal(parseGrpcTimeout("100m"), 100);
    assert.equal(parseGrpcTimeout("1500u"), 2);
    assert.equal(parseGrpcTimeout("1n"), 1);
    assert.equal(parseGrpcTimeout("99999999m"), 99_999_999);
  });

  test("absent or malformed values are ignored: no unit, unknown unit, 9 digits, zero, sign, decimals", () => {
    for (const bad of [null, undefined, "", "100", "100x", "123456789m", "0m", "-1S", "1.5S", "S", "1 S"]) {
      assert.equal(parseGrpcTimeout(bad), undefined, String(bad));
    }
    assert.equal(parseGrpcTimeout(" 7S "), 7_000, "surrounding whitespace is tolerated");
  });

  test("formatting round-trips and stays within 8 digits", () => {
    for (const ms of [1, 250, 99_999_999, 100_000_000, 10 ** 12]) {
      const text = formatGrpcTimeout(ms);
      assert.match(text, /^\d{1,8}[mSM]$/);
      assert.ok(parseGrpcTimeout(text)! >= Math.min(ms, 99_999_999 * 60_000), text);
    }
  });
});

describe("gRPC retry conditions", () => {
  test("retry_on accepts the five gRPC conditions and they survive a round trip", () => {
    const p = parsePolicy({ route: { destination: "payments", retry_policy: { retry_on: "cancelled,deadline-exceeded,internal,resource-exhausted,unavailable,5xx" } } });
    for (const c of ["cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable", "5xx"] as const) assert.ok(p.route.retry.retryOn.has(c), c);
    const again = parsePolicy(policyToDocument(p));
    assert.deepEqual([...again.route.retry.retryOn].sort(), [...p.route.retry.retryOn].sort());
  });

  test("a misspelt gRPC condition is refused with a suggestion naming the field", () => {
    assert.throws(
      () => parsePolicy({ route: { destination: "payments", retry_policy: { retry_on: "unavailible" } } }),
      (e: unknown) => isRemoraError(e, "ERR_POLICY_INVALID") && /retry_on/.test(e.message) && /unavailable/.test(e.message),
    );
  });

  test("each condition maps to its status code and to nothing else", () => {
    const map = { cancelled: 1, "deadline-exceeded": 4, "resource-exhausted": 8, internal: 13, unavailable: 14 } as const;
    for (const [condition, code] of Object.entries(map)) {
      assert.equal(grpcRetryCondition(code), condition);
      const p = policy({ retryOn: condition }).route.retry;
      for (let s = 0; s <= 16; s++) {
        assert.equal(isRetriable({ kind: "status", status: 200, grpcStatus: s }, p), s === code, `${condition} on grpc-status ${s}`);
      }
    }
    // gRPC conditions never retry an HTTP status, and HTTP conditions never read grpc-status.
    assert.equal(isRetriable({ kind: "status", status: 503 }, policy({ retryOn: "unavailable" }).route.retry), false);
    assert.equal(isRetriable({ kind: "status", status: 200, grpcStatus: 14 }, policy({ retryOn: "5xx,reset" }).route.retry), false);
  });

  test("grpc-status parsing and gRPC detection", () => {
    assert.equal(grpcStatusOf(new Headers({ "grpc-status": "14" })), 14);
    assert.equal(grpcStatusOf(new Headers({ "grpc-status": "x" })), undefined);
    assert.equal(grpcStatusOf(new Headers()), undefined);
    assert.ok(isGrpc(new Headers({ "content-type": "application/grpc+proto" })));
    assert.ok(isGrpc(new Headers({ "content-type": "application/grpc" })));
    assert.ok(!isGrpc(new Headers({ "content-type": "application/grpc-web" })));
    assert.equal(encodeGrpcMessage("deadline 100% passé"), "deadline 100%25 pass%C3%A9");
  });

  test("a trailers-only UNAVAILABLE is retried onto the other endpoint when retry_on lists unavailable", async () => {
    const h = harness({ policies: [policy({ retryOn: "unavailable", numRetries: 2 })] });
    h.upstream.on(B1, trailersOnly(14));
    h.upstream.on(B2, withTrailers(0, "charged"));
    const res = await h.call(grpcCall());
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "charged");
    assert.equal((await trailersOf(res))?.get("grpc-status"), "0", "the answering attempt's trailers reach the caller");
    assert.deepEqual(h.upstream.calls.map((c) => c.address), [B1, B2]);
    assert.deepEqual(h.upstream.calls.map((c) => new TextDecoder().decode(c.body)), ["msg", "msg"], "the body is replayed");
    assert.match(h.eventsOf("retry")[0]!.reason, /grpc-status 14/);
  });

  test("without the condition, or for a status it does not name, the first answer stands", async () => {
    const h = harness({ policies: [policy({ retryOn: "5xx,reset,connect-failure", numRetries: 2 })] });
    h.upstream.on(B1, trailersOnly(14));
    assert.equal((await h.call(grpcCall())).headers.get("grpc-status"), "14");
    const h2 = harness({ policies: [policy({ retryOn: "unavailable,internal", numRetries: 2 })] });
    h2.upstream.on(B1, trailersOnly(5)); // NOT_FOUND
    assert.equal((await h2.call(grpcCall())).headers.get("grpc-status"), "5");
    assert.equal(h.upstream.calls.length + h2.upstream.calls.length, 2);
  });

  test("grpc-status in trailers after a body is never retried (the body already went out)", async () => {
    const h = harness({ policies: [policy({ retryOn: "unavailable,cancelled,internal", numRetries: 2 })] });
    h.upstream.on(B1, withTrailers(14, "partial"));
    const res = await h.call(grpcCall());
    assert.equal(await res.text(), "partial");
    assert.equal((await trailersOf(res))?.get("grpc-status"), "14");
    assert.equal(h.upstream.calls.length, 1);
  });

  test("retries run out: the last trailers-only answer is returned as it is", async () => {
    const h = harness({ policies: [policy({ retryOn: "resource-exhausted", numRetries: 1 })] });
    h.upstream.always(B1, trailersOnly(8)).always(B2, trailersOnly(8));
    const res = await h.call(grpcCall());
    assert.equal(res.headers.get("grpc-status"), "8");
    assert.equal(h.upstream.calls.length, 2);
  });
});

describe("grpc-timeout bounds the whole call", () => {
  test("no answer before the deadline: HTTP 200, trailers-only grpc-status 4 at exactly the deadline", async () => {
    const h = harness({ policies: [policy({ retryOn: "unavailable", timeoutMs: 15_000 })] });
    h.upstream.always(B1, "hang").always(B2, "hang");
    const res = await h.call(grpcCall({ "grpc-timeout": "200m" }));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("grpc-status"), "4");
    assert.match(decodeURIComponent(res.headers.get("grpc-message") ?? ""), /grpc-timeout of 200 ms/);
    assert.equal(res.body, null);
    assert.equal(h.clock.now(), 200);
    assert.ok(h.upstream.calls[0]!.signal.aborted, "the attempt was cancelled");
  });

  test("the deadline also stops retries and back-off in between", async () => {
    const h = harness({ policies: [policy({ retryOn: "unavailable", numRetries: 5, backoff: { baseMs: 1_000, maxMs: 1_000 } })], random: () => 0.99 });
    h.upstream.always(B1, trailersOnly(14)).always(B2, trailersOnly(14));
    const res = await h.call(grpcCall({ "grpc-timeout": "1S" }));
    assert.equal(res.headers.get("grpc-status"), "4");
    assert.equal(h.clock.now(), 1_000);
    assert.equal(h.upstream.calls.length, 2, "one back-off of ~990 ms fits, the second attempt's back-off does not");
  });

  test("a shorter route timeout still wins (min of both): 504", async () => {
    const h = harness({ policies: [policy({ timeoutMs: 100 })] });
    h.upstream.always(B1, "hang").always(B2, "hang");
    const res = await h.call(grpcCall({ "grpc-timeout": "5S" }));
    assert.equal(res.status, 504);
    assert.equal(h.clock.now(), 100);
  });

  test("expiry while the answer streams: the body ends and the trailers carry grpc-status 4", async () => {
    const clock = new FakeClock(0);
    let upstreamCancelled = false;
    const send: Upstream = async () => {
      // One message at once, then nothing until the deadline.
      const body = new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(new TextEncoder().encode("first")),
        pull: () => clock.sleep(60_000),
        cancel: () => { upstreamCancelled = true; },
      });
      return attachTrailers(new Response(body, { headers: { "content-type": "application/grpc" } }), new Promise<Headers>(() => {}));
    };
    const outbound = createOutbound({ policies: [policy()], endpoints: { payments: endpoints(B1) } }, { send, clock, random: () => 0, defaultPolicy: () => policy() });
    const res = await clock.run(outbound.handle(grpcCall({ "grpc-timeout": "300m" })));
    assert.equal(res.status, 200);
    const text = await clock.run(res.text());
    assert.equal(text, "first");
    assert.equal(clock.now(), 300);
    assert.equal((await trailersOf(res))?.get("grpc-status"), "4");
    assert.ok(upstreamCancelled);
  });

  test("a call that finishes in time keeps its own trailers and leaves no timer behind", async () => {
    const h = harness();
    h.upstream.on(B1, withTrailers(0));
    const res = await h.call(grpcCall({ "grpc-timeout": "1S" }));
    assert.equal(await res.text(), "reply");
    assert.equal((await trailersOf(res))?.get("x-trace"), "t1");
    assert.equal(h.clock.pending(), 0);
  });
});

describe("streaming request bodies (h2 and gRPC are teed, not buffered first)", () => {
  function streamingOutbound(p: Policy, send: Upstream) {
    const clock = new FakeClock(0);
    return { clock, outbound: createOutbound({ policies: [p], endpoints: { payments: endpoints(B1, B2) } }, { send, clock, random: () => 0, defaultPolicy: () => p }) };
  }

  test("the first message reaches the upstream before the client ends the stream (bidi ping-pong works)", async () => {
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => { push = c; } });
    const send: Upstream = async (req) => {
      const reader = req.body!.getReader();
      const out = new ReadableStream<Uint8Array>({
        async pull(c) {
          const { done, value } = await reader.read();
          if (done) c.close();
          else c.enqueue(new TextEncoder().encode(`echo ${new TextDecoder().decode(value)}`));
        },
      });
      return new Response(out, { headers: { "content-type": "application/grpc" } });
    };
    const { clock, outbound } = streamingOutbound(policy({ retryOn: "unavailable" }), send);
    push.enqueue(new TextEncoder().encode("one"));
    const res = await clock.run(outbound.handle(new Request("http://payments/pkg.Chat/Talk", { method: "POST", body, headers: { ...GRPC, "remora-proto": "h2" }, duplex: "half" } as RequestInit)));
    const reader = res.body!.getReader();
    assert.equal(new TextDecoder().decode((await reader.read()).value), "echo one");
    push.enqueue(new TextEncoder().encode("two"));
    assert.equal(new TextDecoder().decode((await reader.read()).value), "echo two");
    push.close();
    assert.equal((await reader.read()).done, true);
  });

  test("a streamed body within retry_buffer_bytes is replayed whole to the retry", async () => {
    const seen: string[] = [];
    const send: Upstream = async (req, ep) => {
      seen.push(`${ep.address}:${await req.text()}`);
      return ep.address === B1 ? trailersOnly(14)() : withTrailers(0)();
    };
    const { clock, outbound } = streamingOutbound(policy({ retryOn: "unavailable" }), send);
    const body = new ReadableStream<Uint8Array>({ start: (c) => { c.enqueue(new TextEncoder().encode("a")); c.enqueue(new TextEncoder().encode("b")); c.close(); } });
    const res = await clock.run(outbound.handle(new Request("http://payments/x", { method: "POST", body, headers: GRPC, duplex: "half" } as RequestInit)));
    assert.equal(res.headers.get("grpc-status"), null);
    assert.deepEqual(seen, [`${B1}:ab`, `${B2}:ab`]);
  });

  test("past retry_buffer_bytes the body still streams, but the retry is abandoned", async () => {
    let calls = 0;
    const send: Upstream = async (req) => {
      calls++;
      await req.arrayBuffer();
      return trailersOnly(14)();
    };
    const { clock, outbound } = streamingOutbound(policy({ retryOn: "unavailable", retryBufferBytes: 4 }), send);
    const res = await clock.run(outbound.handle(new Request("http://payments/x", { method: "POST", body: "0123456789", headers: GRPC })));
    assert.equal(res.headers.get("grpc-status"), "14");
    assert.equal(calls, 1);
  });
});

describe("trailers survive stages that rebuild the Response", () => {
  test("a rule's response header edits keep the upstream's trailers", async () => {
    const p = parsePolicy({
      route: { destination: "payments", tls: { mode: "DISABLE" }, rules: [{ name: "tag", response_headers: { set: { "x-edited": "yes" } } }] },
    });
    const h = harness({ policies: [p] });
    h.upstream.on(B1, withTrailers(0));
    const res = await h.call(grpcCall());
    assert.equal(res.headers.get("x-edited"), "yes");
    assert.equal(await res.text(), "reply");
    assert.equal((await trailersOf(res))?.get("grpc-status"), "0");
  });
});
