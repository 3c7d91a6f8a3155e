// Property tests (fast-check) for the small text parsers on the request and config paths:
// SPIFFE IDs, durations and W3C traceparent headers. Random and mutated input yields a
// result or a RemoraError with a one-line message (traceparent: a value or undefined,
// never a throw); accepted values keep the invariants their specs state.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatDuration, parseDuration } from "../../src/core/duration.ts";
import { RemoraError } from "../../src/core/errors.ts";
import { parseSpiffeId } from "../../src/core/identity/spiffe-id.ts";
import { formatTraceparent, parseTraceparent } from "../../src/core/trace/traceparent.ts";
import { parsePolicy } from "../../src/core/policy/parse.ts";
import { MAX_TIMER_MS } from "../../src/core/validation.ts";

const RUNS = { numRuns: 1_000, interruptAfterTimeLimit: 5_000 };

function rejection(f: () => unknown, code: string): RemoraError | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!(e instanceof RemoraError)) throw new Error(`crashed with ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes("\n") && e.message.length > 0, JSON.stringify(e.message));
    return e;
  }
}

/** Mutations of `base` by characters likely to matter to the parser at hand. */
const mutate = (base: fc.Arbitrary<string>, alphabet: string[]) =>
  fc
    .tuple(base, fc.array(fc.tuple(fc.nat(), fc.constantFrom("delete", "insert", "replace"), fc.constantFrom(...alphabet)), { maxLength: 4 }))
    .map(([s, ops]) => {
      for (const [at, op, c] of ops) {
        const i = s.length === 0 ? 0 : at % (s.length + 1);
        s = op === "delete" ? s.slice(0, i) + s.slice(i + 1) : op === "insert" ? s.slice(0, i) + c + s.slice(i) : s.slice(0, i) + c + s.slice(i + 1);
      }
      return s;
    });

describe("fuzz: SPIFFE IDs", () => {
  const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,12}$/);
  const valid = fc
    .tuple(fc.stringMatching(/^[a-z0-9._-]{1,20}$/), fc.array(segment, { maxLength: 5 }))
    .map(([td, path]) => `spiffe://${td}${path.map((p) => `/${p}`).join("")}`);

  test("random and mutated IDs: a parsed ID or one clean sentence naming it", () => {
    const alphabet = ["/", "//", ".", "..", "%", "?", "#", "@", ":", "A", "é", " ", "spiffe://", "\u0000"];
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 60 }), mutate(valid, alphabet)), (id) => {
        const e = rejection(() => parseSpiffeId(id), "ERR_SPIFFE_ID");
        if (e !== undefined) return assert.match(e.message, /^SPIFFE ID "/);
        // Accepted: SPIFFE-ID.md §2 holds.
        const { trustDomain, path } = parseSpiffeId(id);
        assert.equal(id, `spiffe://${trustDomain}${path}`);
        assert.match(trustDomain, /^[a-z0-9._-]+$/);
        assert.ok(path === "" || (!path.endsWith("/") && !path.includes("//")), path);
        for (const seg of path.split("/").slice(1)) assert.ok(seg !== "." && seg !== "..", path);
      }),
      RUNS,
    );
  });

  test("long IDs are refused by length, not by a slow scan", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2_000, max: 100_000 }), (n) => {
        const id = `spiffe://td/${"a".repeat(n)}`;
        const e = rejection(() => parseSpiffeId(id), "ERR_SPIFFE_ID");
        assert.equal(e === undefined, new TextEncoder().encode(id).length <= 2048);
      }),
      { numRuns: 50 },
    );
  });
});

describe("fuzz: durations", () => {
  const validText = fc
    .array(fc.tuple(fc.nat({ max: 999 }), fc.option(fc.nat({ max: 999 }), { nil: undefined }), fc.constantFrom("h", "m", "s", "ms", "us", "µs")), { minLength: 1, maxLength: 4 })
    .map((terms) => terms.map(([i, f, u]) => `${i}${f === undefined ? "" : `.${f}`}${u}`).join(""));

  test("random and mutated duration text: milliseconds or one clean sentence", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 20 }), mutate(validText, ["-", "+", ".", "e", "1e400", " ", "ns", "d", "0x"])), (text) => {
        const e = rejection(() => parseDuration(text), "ERR_DURATION");
        if (e !== undefined) return;
        const ms = parseDuration(text);
        assert.ok(Number.isFinite(ms) && ms >= 0, `${text} -> ${ms}`);
      }),
      RUNS,
    );
  });

  test("formatDuration and parseDuration round-trip whole microseconds", () => {
    fc.assert(
      fc.property(fc.nat({ max: MAX_TIMER_MS * 1000 }), (us) => {
        const ms = us / 1000;
        assert.equal(parseDuration(formatDuration(ms)), ms);
      }),
      RUNS,
    );
  });

  // Found by fuzzing: "99999999999999999999h" was accepted as route.timeout, and runtimes
  // fire a setTimeout above 2^31 - 1 ms at once, so every request would have timed out.
  test("a policy duration is accepted only when a timer can wait that long", () => {
    fc.assert(
      fc.property(fc.oneof(validText, fc.nat({ max: 10_000_000 }).map((h) => `${h}h`)), (text) => {
        let timeoutMs: number;
        try {
          timeoutMs = parsePolicy({ route: { destination: "payments", timeout: text } }, "p.yaml").route.timeoutMs;
        } catch (e) {
          if (!(e instanceof RemoraError)) throw e;
          assert.match(e.message, /^p\.yaml: route\.timeout: /);
          return;
        }
        assert.ok(timeoutMs <= MAX_TIMER_MS, `${text} accepted as ${timeoutMs} ms`);
      }),
      RUNS,
    );
    assert.throws(() => parsePolicy({ route: { destination: "payments", timeout: "600h" } }, "p.yaml"), /route\.timeout: "600h" is more than the maximum of 596h31m23\.647s/);
  });
});

describe("fuzz: traceparent", () => {
  const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
  const valid = fc.tuple(hex(2), hex(32), hex(16), hex(2)).map(([v, t, p, f]) => `${v}-${t}-${p}-${f}`);

  test("random and mutated headers: a parsed context or undefined, never a throw", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 80 }), mutate(valid, ["-", "A", "f", "0", " ", "ff", "-extra", "\t"])), (value) => {
        const tp = parseTraceparent(value);
        if (tp === undefined) return;
        // W3C trace-context: lowercase hex, non-zero ids, sampled is bit 0 of the flags.
        assert.match(tp.traceId, /^[0-9a-f]{32}$/);
        assert.match(tp.parentId, /^[0-9a-f]{16}$/);
        assert.ok(!/^0+$/.test(tp.traceId) && !/^0+$/.test(tp.parentId));
        assert.equal(tp.sampled, (tp.flags & 1) === 1);
        assert.deepEqual(parseTraceparent(formatTraceparent(tp)), { ...tp, flags: tp.sampled ? 1 : 0 });
      }),
      RUNS,
    );
  });
});
