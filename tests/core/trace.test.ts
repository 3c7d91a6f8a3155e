import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatTraceparent, nextHop, parseTraceparent, randomId } from "../../src/core/trace/traceparent.ts";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const SPEC_EXAMPLE = `00-${TRACE}-${PARENT}-01`;

/** Deterministic bytes: 0x01, 0x02, ... so ids are predictable in assertions. */
function counterBytes(): (n: number) => Uint8Array {
  let next = 1;
  return (n) => Uint8Array.from({ length: n }, () => next++ & 0xff);
}

describe("parseTraceparent", () => {
  test("the spec's examples", () => {
    assert.deepEqual(parseTraceparent(SPEC_EXAMPLE), { traceId: TRACE, parentId: PARENT, flags: 1, sampled: true });
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, flags: 0, sampled: false });
  });

  test("sampled is bit 0 of the flags, tested with a mask", () => {
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-03`)?.sampled, true);
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-02`)?.sampled, false);
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-ff`)?.sampled, true);
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-ff`)?.flags, 0xff);
  });

  test("surrounding spaces and tabs are tolerated", () => {
    assert.equal(parseTraceparent(` \t${SPEC_EXAMPLE} `)?.traceId, TRACE);
  });

  const invalid: [string, string][] = [
    ["empty", ""],
    ["too short", SPEC_EXAMPLE.slice(0, 54)],
    ["uppercase trace-id", `00-${TRACE.toUpperCase()}-${PARENT}-01`],
    ["uppercase parent-id", `00-${TRACE}-00F067AA0BA902B7-01`],
    ["uppercase version", `0A-${TRACE}-${PARENT}-01`],
    ["uppercase flags", `00-${TRACE}-${PARENT}-0A`],
    ["all-zero trace-id", `00-${"0".repeat(32)}-${PARENT}-01`],
    ["all-zero parent-id", `00-${TRACE}-${"0".repeat(16)}-01`],
    ["version ff", `ff-${TRACE}-${PARENT}-01`],
    ["version not hex", `0g-${TRACE}-${PARENT}-01`],
    ["version 00 with extra fields", `${SPEC_EXAMPLE}-what-the-future-will-be-like`],
    ["version 00 with a trailing character", `${SPEC_EXAMPLE}.`],
    ["wrong delimiter", `00_${TRACE}-${PARENT}-01`],
    ["short trace-id", `00-${TRACE.slice(1)}-${PARENT}-01x`],
    ["non-hex parent-id", `00-${TRACE}-00f067aa0ba902bz-01`],
    ["non-hex flags", `00-${TRACE}-${PARENT}-0x`],
    ["two headers joined", `${SPEC_EXAMPLE}, ${SPEC_EXAMPLE}`],
    ["higher version with a bad 56th char", `cc-${TRACE}-${PARENT}-01.what-the-future-will-be-like`],
    ["higher version too short", `cc-${TRACE}-${PARENT}-1`],
  ];
  for (const [name, value] of invalid) {
    test(`invalid: ${name}`, () => assert.equal(parseTraceparent(value), undefined));
  }
  test("invalid: missing (null/undefined)", () => {
    assert.equal(parseTraceparent(null), undefined);
    assert.equal(parseTraceparent(undefined), undefined);
  });

  test("a higher version is read at the version-00 positions, extra fields ignored", () => {
    assert.deepEqual(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-the-future-will-be-like`), {
      traceId: TRACE,
      parentId: PARENT,
      flags: 1,
      sampled: true,
    });
    assert.equal(parseTraceparent(`01-${TRACE}-${PARENT}-00`)?.sampled, false);
  });
});

describe("formatTraceparent", () => {
  test("writes version 00 and only the sampled bit", () => {
    assert.equal(formatTraceparent({ traceId: TRACE, parentId: PARENT, sampled: true }), SPEC_EXAMPLE);
    assert.equal(formatTraceparent({ traceId: TRACE, parentId: PARENT, sampled: false }), `00-${TRACE}-${PARENT}-00`);
  });

  test("parse(format(x)) gives x back", () => {
    const tp = parseTraceparent(formatTraceparent({ traceId: TRACE, parentId: PARENT, sampled: true }));
    assert.deepEqual(tp, { traceId: TRACE, parentId: PARENT, flags: 1, sampled: true });
  });
});

describe("randomId", () => {
  test("lowercase hex of the asked length", () => {
    assert.equal(randomId(8, counterBytes()), "0102030405060708");
    assert.match(randomId(16), /^[0-9a-f]{32}$/);
  });

  test("never all zero, even from a source of zeros", () => {
    const zeros = (n: number) => new Uint8Array(n);
    assert.equal(randomId(8, zeros), "0000000000000001");
    assert.equal(randomId(16, zeros), `${"0".repeat(31)}1`);
  });

  test("two default ids differ", () => {
    assert.notEqual(randomId(16), randomId(16));
  });
});

describe("nextHop (participating proxy)", () => {
  test("valid incoming: keep trace-id and sampled flag, new parent-id, forward tracestate unchanged", () => {
    const h = new Headers({ traceparent: SPEC_EXAMPLE, tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE" });
    const hop = nextHop(h, counterBytes());
    assert.deepEqual(hop, {
      traceId: TRACE,
      spanId: "0102030405060708",
      parentSpanId: PARENT,
      sampled: true,
      traceparent: `00-${TRACE}-0102030405060708-01`,
      tracestate: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
      restarted: false,
    });
  });

  test("the header name is case-insensitive and unsampled stays unsampled", () => {
    const hop = nextHop(new Headers([["TraceParent", `00-${TRACE}-${PARENT}-00`]]), counterBytes());
    assert.equal(hop.traceparent, `00-${TRACE}-0102030405060708-00`);
    assert.equal(hop.sampled, false);
  });

  test("unknown flag bits are not forwarded", () => {
    const hop = nextHop(new Headers({ traceparent: `00-${TRACE}-${PARENT}-ff` }), counterBytes());
    assert.ok(hop.traceparent.endsWith("-01"));
  });

  test("several tracestate lines are joined with commas, in order", () => {
    const h = new Headers();
    h.set("traceparent", SPEC_EXAMPLE);
    h.append("tracestate", "rojo=00f067aa0ba902b7");
    h.append("tracestate", "congo=t61rcWkgMzE");
    const hop = nextHop(h, counterBytes());
    assert.equal(hop.tracestate, "rojo=00f067aa0ba902b7, congo=t61rcWkgMzE");
  });

  test("no tracestate in, none out; an empty one is dropped", () => {
    assert.equal("tracestate" in nextHop(new Headers({ traceparent: SPEC_EXAMPLE })), false);
    assert.equal("tracestate" in nextHop(new Headers({ traceparent: SPEC_EXAMPLE, tracestate: "" })), false);
  });

  test("a higher version is downgraded to 00 on the way out", () => {
    const hop = nextHop(new Headers({ traceparent: `cc-${TRACE}-${PARENT}-01-future`, tracestate: "a=1" }), counterBytes());
    assert.equal(hop.traceparent, `00-${TRACE}-0102030405060708-01`);
    assert.equal(hop.tracestate, "a=1");
    assert.equal(hop.restarted, false);
  });

  test("missing traceparent: a new trace, sampled by default", () => {
    const hop = nextHop(new Headers(), counterBytes());
    assert.deepEqual(hop, {
      traceId: "090a0b0c0d0e0f101112131415161718",
      spanId: "0102030405060708",
      sampled: true,
      traceparent: "00-090a0b0c0d0e0f101112131415161718-0102030405060708-01",
      restarted: true,
    });
  });

  test("invalid traceparent: a new trace and tracestate dropped", () => {
    const hop = nextHop(new Headers({ traceparent: `00-${"0".repeat(32)}-${PARENT}-01`, tracestate: "rojo=1" }), counterBytes());
    assert.equal(hop.restarted, true);
    assert.notEqual(hop.traceId, "0".repeat(32));
    assert.equal(hop.parentSpanId, undefined);
    assert.equal(hop.tracestate, undefined);
  });

  test("sampleNew: false starts unsampled traces", () => {
    const hop = nextHop(new Headers(), counterBytes(), { sampleNew: false });
    assert.ok(hop.traceparent.endsWith("-00"));
    assert.equal(hop.sampled, false);
  });

  test("with the default random source, ids are valid and fresh per hop", () => {
    const h = new Headers({ traceparent: SPEC_EXAMPLE });
    const a = nextHop(h);
    const b = nextHop(h);
    assert.notEqual(a.spanId, b.spanId);
    assert.notEqual(a.spanId, PARENT);
    assert.ok(parseTraceparent(a.traceparent));
    assert.ok(parseTraceparent(nextHop(new Headers()).traceparent));
  });
});

test("default ids come from a refilled pool: 2,000 span ids and trace ids are distinct, well formed, and cross pool refills", () => {
  const spans = new Set<string>();
  const traces = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const hop = nextHop(new Headers());
    spans.add(hop.spanId);
    traces.add(hop.traceId);
    assert.match(hop.spanId, /^[0-9a-f]{16}$/);
    assert.match(hop.traceId, /^[0-9a-f]{32}$/);
  }
  assert.equal(spans.size, 2000);
  assert.equal(traces.size, 2000);
});
