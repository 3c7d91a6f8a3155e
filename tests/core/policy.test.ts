import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as v from "valibot";
import { isRemoraError } from "../../src/core/errors.ts";
import { defaultPolicy, parsePolicies, parsePolicy, policyToDocument } from "../../src/core/policy/parse.ts";
import type { Policy } from "../../src/core/policy/types.ts";
import { suggest, validate, ValidationError } from "../../src/core/validation.ts";

const SEED = "policies/payments.yaml";
const seedText = readFileSync(new URL(`../../${SEED}`, import.meta.url), "utf8");

/** Asserts that parsing throws ERR_POLICY_INVALID with exactly this message. */
function refuses(doc: unknown, message: string, source?: string): void {
  assert.throws(
    () => parsePolicy(doc, source),
    (e: unknown) => {
      assert.ok(isRemoraError(e, "ERR_POLICY_INVALID"), `not ERR_POLICY_INVALID: ${String(e)}`);
      assert.equal(e.message, message);
      return true;
    },
  );
}

const route = (extra: Record<string, unknown> = {}) => ({ route: { destination: "payments", ...extra } });
const retry = (r: Record<string, unknown> | null) => route({ retry_policy: r });

describe("the seed policy", () => {
  test("policies/payments.yaml parses unchanged into the expected Policy", () => {
    const [p, ...rest] = parsePolicies(seedText, SEED);
    assert.equal(rest.length, 0);
    const expected: Policy = {
      route: {
        destination: "payments",
        loadBalancer: "round_robin",
        retry: {
          retryOn: new Set(["connect-failure", "5xx", "reset"] as const),
          numRetries: 2,
          perTryTimeoutMs: 250,
          retriableStatusCodes: [],
          backoff: { baseMs: 25, maxMs: 250 },
        },
        timeoutMs: 15_000,
        tls: { mode: "MUTUAL" },
        retryBufferBytes: 65_536,
      },
      outlier: {
        consecutive5xx: 5,
        consecutiveGatewayFailure: 5,
        intervalMs: 10_000,
        baseEjectionMs: 30_000,
        maxEjectionMs: 300_000,
        maxEjectionPercent: 10,
      },
    };
    assert.deepEqual(p, expected);
  });

  test("the seed file is the design's document, comments included", () => {
    assert.match(seedText, /destination: payments {10}# logical name, not an IP/);
    assert.match(seedText, /mode: ISTIO_MUTUAL {11}# both proxies present a cert/);
  });
});

describe("route defaults", () => {
  const p = parsePolicy(route());

  test("a bare route gets round robin, 15s timeout, mTLS, 64 KiB retry buffer, no outlier detection", () => {
    assert.equal(p.route.loadBalancer, "round_robin");
    assert.equal(p.route.timeoutMs, 15_000);
    assert.deepEqual(p.route.tls, { mode: "MUTUAL" });
    assert.equal(p.route.retryBufferBytes, 65_536);
    assert.equal(p.outlier, undefined);
    assert.equal("outlier" in p, false);
  });

  test("no retry_policy means Istio's default: 2 retries on connect-failure,refused-stream,503, no per-try timeout", () => {
    assert.deepEqual(p.route.retry, {
      retryOn: new Set(["connect-failure", "refused-stream", "retriable-status-codes"]),
      numRetries: 2,
      retriableStatusCodes: [503],
      backoff: { baseMs: 25, maxMs: 250 },
    });
    assert.equal(p.route.retry.perTryTimeoutMs, undefined);
  });

  test("defaultPolicy(destination) equals parsing a bare route", () => {
    assert.deepEqual(defaultPolicy("payments"), p);
  });

  test("an empty retry_policy (YAML null) or {} gets the same defaults", () => {
    assert.deepEqual(parsePolicy(retry(null)).route.retry, p.route.retry);
    assert.deepEqual(parsePolicy(retry({})).route.retry, p.route.retry);
  });
});

describe("route fields", () => {
  test("destination accepts DNS-style names", () => {
    for (const d of ["payments", "payments-v2", "payments.default", "a", "x1.y-2.z"]) {
      assert.equal(parsePolicy({ route: { destination: d } }).route.destination, d);
    }
  });

  test("destination refuses addresses, uppercase and empty names", () => {
    for (const d of ["Payments", "10.0.0.1:80", "-payments", "payments-", "", "a..b", "pay_ments", "payments/charge"]) {
      refuses(
        { route: { destination: d } },
        `route.destination: ${JSON.stringify(d)} is not a valid destination name, use lowercase letters, digits, "-" and "."`,
      );
    }
    refuses({ route: { destination: `${"a".repeat(64)}` } }, `route.destination: "${"a".repeat(64)}" is not a valid destination name, use lowercase letters, digits, "-" and "."`);
  });

  test("destination is required and must be a string", () => {
    refuses({ route: {} }, "route.destination: required field is missing");
    refuses({ route: { destination: 7 } }, "route.destination: expected a destination name but got 7");
  });

  test("load_balancer takes each of its three values", () => {
    for (const lb of ["round_robin", "least_request", "random"] as const) {
      assert.equal(parsePolicy(route({ load_balancer: lb })).route.loadBalancer, lb);
    }
  });

  test("a bad load_balancer names the value and suggests the close one", () => {
    refuses(route({ load_balancer: "round-robin" }), 'route.load_balancer: "round-robin" is not a load balancer, did you mean "round_robin"?');
    refuses(route({ load_balancer: "ring_hash" }), 'route.load_balancer: "ring_hash" is not a load balancer, expected one of round_robin, least_request, random');
  });

  test("timeout is a duration; 0 disables it", () => {
    assert.equal(parsePolicy(route({ timeout: "3s" })).route.timeoutMs, 3_000);
    assert.equal(parsePolicy(route({ timeout: "0" })).route.timeoutMs, 0);
    assert.equal(parsePolicy(route({ timeout: 0 })).route.timeoutMs, 0);
  });

  test("a bare number other than 0 is not a duration", () => {
    refuses(route({ timeout: 30 }), 'route.timeout: 30 is not a duration, write it with a unit such as "30s" or "30ms"');
    refuses(route({ timeout: true }), 'route.timeout: expected a duration like "250ms" but got true');
  });

  test("retry_buffer_bytes is a whole number >= 0", () => {
    assert.equal(parsePolicy(route({ retry_buffer_bytes: 0 })).route.retryBufferBytes, 0);
    assert.equal(parsePolicy(route({ retry_buffer_bytes: 1_048_576 })).route.retryBufferBytes, 1_048_576);
    refuses(route({ retry_buffer_bytes: -1 }), "route.retry_buffer_bytes: -1 is less than the minimum of 0");
    refuses(route({ retry_buffer_bytes: 1.5 }), "route.retry_buffer_bytes: expected a whole number but got 1.5");
    refuses(route({ retry_buffer_bytes: "64k" }), 'route.retry_buffer_bytes: expected a whole number but got "64k"');
  });

  test("tls.mode: ISTIO_MUTUAL is an alias of MUTUAL; SIMPLE and DISABLE are kept; default MUTUAL", () => {
    assert.equal(parsePolicy(route({ tls: { mode: "ISTIO_MUTUAL" } })).route.tls.mode, "MUTUAL");
    assert.equal(parsePolicy(route({ tls: { mode: "MUTUAL" } })).route.tls.mode, "MUTUAL");
    assert.equal(parsePolicy(route({ tls: { mode: "SIMPLE" } })).route.tls.mode, "SIMPLE");
    assert.equal(parsePolicy(route({ tls: { mode: "DISABLE" } })).route.tls.mode, "DISABLE");
    assert.equal(parsePolicy(route({ tls: {} })).route.tls.mode, "MUTUAL");
    assert.equal(parsePolicy(route({ tls: null })).route.tls.mode, "MUTUAL");
  });

  test("tls.mode refuses inbound names and lowercase", () => {
    refuses(route({ tls: { mode: "STRICT" } }), 'route.tls.mode: "STRICT" is not a TLS mode, expected one of ISTIO_MUTUAL, MUTUAL, SIMPLE, DISABLE');
    refuses(route({ tls: { mode: "mutual" } }), 'route.tls.mode: "mutual" is not a TLS mode, did you mean "MUTUAL"?');
  });
});

describe("retry_policy", () => {
  test("retry_on accepts a comma-separated string (spaces allowed) or a YAML list", () => {
    const all = ["5xx", "gateway-error", "connect-failure", "reset", "refused-stream", "retriable-4xx"];
    assert.deepEqual(parsePolicy(retry({ retry_on: all.join(", ") })).route.retry.retryOn, new Set(all));
    assert.deepEqual(parsePolicy(retry({ retry_on: ["reset", "5xx"] })).route.retry.retryOn, new Set(["reset", "5xx"]));
  });

  test("an explicit retry_on has no status codes unless it asks for them", () => {
    const r = parsePolicy(retry({ retry_on: "5xx" })).route.retry;
    assert.deepEqual(r.retriableStatusCodes, []);
    assert.equal(r.numRetries, 2);
  });

  test("retriable-status-codes with its list", () => {
    const r = parsePolicy(retry({ retry_on: "retriable-status-codes,5xx", retriable_status_codes: [409, 503, 409] })).route.retry;
    assert.deepEqual(r.retryOn, new Set(["retriable-status-codes", "5xx"]));
    assert.deepEqual(r.retriableStatusCodes, [409, 503]);
  });

  test("retriable_status_codes with the default retry_on replaces the default [503]", () => {
    assert.deepEqual(parsePolicy(retry({ retriable_status_codes: [502] })).route.retry.retriableStatusCodes, [502]);
  });

  test("an unknown retry_on value is named, with a suggestion when one is close", () => {
    refuses(retry({ retry_on: "connect-failure,5xxx" }), 'route.retry_policy.retry_on: "5xxx" is not a retry condition, did you mean "5xx"?');
    refuses(
      retry({ retry_on: "envoy-ratelimited" }),
      'route.retry_policy.retry_on: "envoy-ratelimited" is not a retry condition remora supports, expected one of 5xx, gateway-error, connect-failure, reset, refused-stream, retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable',
    );
    refuses(retry({ retry_on: ["reset", "connect_failure"] }), 'route.retry_policy.retry_on: "connect_failure" is not a retry condition, did you mean "connect-failure"?');
  });

  test("retry_on must name something and be text or a list", () => {
    refuses(retry({ retry_on: " , " }), "route.retry_policy.retry_on: names no retry condition, set num_retries: 0 to turn retries off");
    refuses(retry({ retry_on: 5 }), 'route.retry_policy.retry_on: expected retry conditions like "connect-failure,5xx" but got 5');
  });

  test("status codes and their condition must come together", () => {
    refuses(
      retry({ retry_on: "5xx", retriable_status_codes: [409] }),
      "route.retry_policy.retriable_status_codes: has no effect unless retry_on includes retriable-status-codes",
    );
    refuses(
      retry({ retry_on: "retriable-status-codes" }),
      "route.retry_policy.retry_on: includes retriable-status-codes but retriable_status_codes lists no status",
    );
  });

  test("retriable_status_codes are whole numbers in 100..599, named by index", () => {
    refuses(retry({ retriable_status_codes: [503, 600] }), "route.retry_policy.retriable_status_codes[1]: 600 is more than the maximum of 599");
    refuses(retry({ retriable_status_codes: [99] }), "route.retry_policy.retriable_status_codes[0]: 99 is less than the minimum of 100");
    refuses(retry({ retriable_status_codes: 503 }), "route.retry_policy.retriable_status_codes: expected a list of status codes but got 503");
  });

  test("num_retries: any whole number >= 0; 0 turns retries off; negative is refused", () => {
    assert.equal(parsePolicy(retry({ num_retries: 0 })).route.retry.numRetries, 0);
    assert.equal(parsePolicy(retry({ num_retries: 5 })).route.retry.numRetries, 5);
    refuses(retry({ num_retries: -1 }), "route.retry_policy.num_retries: -1 is less than the minimum of 0");
    refuses(retry({ num_retries: "2" }), 'route.retry_policy.num_retries: expected a whole number but got "2"');
  });

  test("per_try_timeout is a positive duration", () => {
    assert.equal(parsePolicy(retry({ per_try_timeout: "250ms" })).route.retry.perTryTimeoutMs, 250);
    refuses(retry({ per_try_timeout: "0" }), "route.retry_policy.per_try_timeout: must be greater than 0");
  });

  test("a bad per_try_timeout names the path, with and without a source file", () => {
    refuses(retry({ per_try_timeout: "25x" }), 'route.retry_policy.per_try_timeout: "25x" is not a duration');
    refuses(retry({ per_try_timeout: "25x" }), 'policies/payments.yaml: route.retry_policy.per_try_timeout: "25x" is not a duration', SEED);
  });

  test("a per_try_timeout not below a non-zero route timeout is dropped, as Envoy ignores it", () => {
    assert.equal(parsePolicy(route({ timeout: "1s", retry_policy: { per_try_timeout: "1s" } })).route.retry.perTryTimeoutMs, undefined);
    assert.equal(parsePolicy(route({ timeout: "1s", retry_policy: { per_try_timeout: "2s" } })).route.retry.perTryTimeoutMs, undefined);
    assert.equal(parsePolicy(route({ timeout: "1s", retry_policy: { per_try_timeout: "999ms" } })).route.retry.perTryTimeoutMs, 999);
    assert.equal(parsePolicy(route({ timeout: "0", retry_policy: { per_try_timeout: "20s" } })).route.retry.perTryTimeoutMs, 20_000);
    assert.equal(parsePolicy(retry({ per_try_timeout: "20s" })).route.retry.perTryTimeoutMs, undefined);
  });

  test("retry_back_off: base default 25ms, max default 10 x base", () => {
    assert.deepEqual(parsePolicy(retry({ retry_back_off: { base_interval: "100ms" } })).route.retry.backoff, { baseMs: 100, maxMs: 1_000 });
    assert.deepEqual(parsePolicy(retry({ retry_back_off: { max_interval: "1s" } })).route.retry.backoff, { baseMs: 25, maxMs: 1_000 });
    assert.deepEqual(
      parsePolicy(retry({ retry_back_off: { base_interval: "10ms", max_interval: "10ms" } })).route.retry.backoff,
      { baseMs: 10, maxMs: 10 },
    );
    assert.deepEqual(parsePolicy(retry({ retry_back_off: null })).route.retry.backoff, { baseMs: 25, maxMs: 250 });
  });

  test("sub-millisecond back-off rounds up to 1 ms, as in Envoy", () => {
    assert.deepEqual(parsePolicy(retry({ retry_back_off: { base_interval: "500us" } })).route.retry.backoff, { baseMs: 1, maxMs: 10 });
  });

  test("max_interval below base_interval is refused", () => {
    refuses(
      retry({ retry_back_off: { base_interval: "100ms", max_interval: "50ms" } }),
      "p.yaml: route.retry_policy.retry_back_off.max_interval: 50ms is less than base_interval 100ms",
      "p.yaml",
    );
    assert.throws(() => parsePolicy(retry({ retry_back_off: { base_interval: "100ms", max_interval: "50ms" } }), "p.yaml"), /^ValidationError: p\.yaml: route/);
    refuses(retry({ retry_back_off: { base_interval: "0" } }), "route.retry_policy.retry_back_off.base_interval: must be greater than 0");
  });
});

describe("outlier_detection", () => {
  test("an empty block (YAML null) enables it with Envoy's defaults", () => {
    const expected = {
      consecutive5xx: 5,
      consecutiveGatewayFailure: 5,
      intervalMs: 10_000,
      baseEjectionMs: 30_000,
      maxEjectionMs: 300_000,
      maxEjectionPercent: 10,
    };
    assert.deepEqual(parsePolicy({ ...route(), outlier_detection: null }).outlier, expected);
    assert.deepEqual(parsePolicy({ ...route(), outlier_detection: {} }).outlier, expected);
  });

  test("every field is read", () => {
    const p = parsePolicy({
      ...route(),
      outlier_detection: {
        consecutive_5xx: 3,
        consecutive_gateway_failure: 2,
        interval: "1s",
        base_ejection_time: "5s",
        max_ejection_time: "1m",
        max_ejection_percent: 50,
      },
    });
    assert.deepEqual(p.outlier, {
      consecutive5xx: 3,
      consecutiveGatewayFailure: 2,
      intervalMs: 1_000,
      baseEjectionMs: 5_000,
      maxEjectionMs: 60_000,
      maxEjectionPercent: 50,
    });
  });

  test("max_ejection_time defaults to 300s, or base_ejection_time if larger", () => {
    assert.equal(parsePolicy({ ...route(), outlier_detection: { base_ejection_time: "10m" } }).outlier?.maxEjectionMs, 600_000);
    assert.equal(parsePolicy({ ...route(), outlier_detection: { base_ejection_time: "1m" } }).outlier?.maxEjectionMs, 300_000);
  });

  test("an explicit max_ejection_time below base is refused, as Envoy does", () => {
    refuses(
      { ...route(), outlier_detection: { base_ejection_time: "30s", max_ejection_time: "10s" } },
      "outlier_detection.max_ejection_time: 10s is less than base_ejection_time 30s",
    );
  });

  test("bounds: percent 0..100, thresholds >= 1", () => {
    assert.equal(parsePolicy({ ...route(), outlier_detection: { max_ejection_percent: 0 } }).outlier?.maxEjectionPercent, 0);
    assert.equal(parsePolicy({ ...route(), outlier_detection: { max_ejection_percent: 100 } }).outlier?.maxEjectionPercent, 100);
    refuses({ ...route(), outlier_detection: { max_ejection_percent: 101 } }, "outlier_detection.max_ejection_percent: 101 is more than the maximum of 100");
    refuses({ ...route(), outlier_detection: { consecutive_5xx: 0 } }, "outlier_detection.consecutive_5xx: 0 is less than the minimum of 1");
    refuses({ ...route(), outlier_detection: { interval: "soon" } }, 'outlier_detection.interval: "soon" is not a duration');
  });
});

describe("document shape errors", () => {
  test("an unknown field is named, with the close name suggested", () => {
    refuses(route({ retry_polcy: { num_retries: 1 } }), 'route.retry_polcy: unknown field, did you mean "retry_policy"?');
    refuses(retry({ retryOn: "5xx" }), 'route.retry_policy.retryOn: unknown field, did you mean "retry_on"?');
    refuses({ ...route(), outlier: {} }, 'outlier: unknown field, did you mean "outlier_detection"?');
    refuses(route({ colour: "blue" }), "route.colour: unknown field");
    refuses({ ...route(), outlier_detection: { consecutive5xx: 3 } }, 'outlier_detection.consecutive5xx: unknown field, did you mean "consecutive_5xx"?');
  });

  test("the document and its blocks must be mappings", () => {
    refuses("route: x", 'expected a mapping but got "route: x"');
    refuses(null, "policies/payments.yaml: expected a mapping but got null", SEED);
    refuses({ route: ["a"] }, "route: expected a mapping but got a list");
    refuses(route({ retry_policy: "5xx" }), 'route.retry_policy: expected a mapping but got "5xx"');
  });

  test("every issue is kept on the error, the message is the first", () => {
    try {
      parsePolicy(route({ timeout: "x", load_balancer: "y", zzz: 1 }), "f.yaml");
      assert.fail("should throw");
    } catch (e) {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.source, "f.yaml");
      assert.deepEqual(
        e.issues.map((i) => i.path),
        ["route.zzz", "route.load_balancer", "route.timeout"],
      );
      assert.equal(e.message, `f.yaml: ${e.issues[0]?.path}: ${e.issues[0]?.message}`);
    }
  });
});

describe("parsePolicies (YAML)", () => {
  test("several documents separated by ---, empty ones skipped", () => {
    const text = "---\nroute:\n  destination: a\n---\n# nothing here\n---\nroute:\n  destination: b\n  load_balancer: random\n";
    const ps = parsePolicies(text, "all.yaml");
    assert.deepEqual(ps.map((p) => [p.route.destination, p.route.loadBalancer]), [["a", "round_robin"], ["b", "random"]]);
    assert.deepEqual(parsePolicies(""), []);
  });

  test("a YAML syntax error is one sentence with file, line and column", () => {
    const text = "route:\n  destination: payments\n  retry_policy:\n    retry_on: [5xx\n";
    assert.throws(
      () => parsePolicies(text, "policies/bad.yaml"),
      (e: unknown) =>
        isRemoraError(e, "ERR_POLICY_INVALID") &&
        e.message === "policies/bad.yaml:5:1: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]",
    );
    assert.throws(() => parsePolicies("a: 1\na: 2\n", "dup.yaml"), { message: "dup.yaml:2:1: invalid YAML: Map keys must be unique" });
    assert.throws(() => parsePolicies("route:\n\tdestination: x\n"), { message: "line 2, column 1: invalid YAML: Tabs are not allowed as indentation" });
  });

  test("a schema error in the second document names the file and the document", () => {
    const text = "route:\n  destination: a\n---\nroute:\n  destination: b\n  timeout: 25x\n";
    assert.throws(() => parsePolicies(text, "p.yaml"), { message: 'p.yaml (document 2): route.timeout: "25x" is not a duration' });
  });

  test("the same destination twice is refused", () => {
    const text = "route:\n  destination: a\n---\nroute:\n  destination: a\n";
    assert.throws(() => parsePolicies(text, "p.yaml"), { message: 'p.yaml (document 2): route.destination: "a" is already defined by document 1' });
  });

  test("YAML 1.2 scalars: a bare 0 timeout, a quoted duration", () => {
    const [p] = parsePolicies("route:\n  destination: a\n  timeout: 0\n  retry_policy:\n    per_try_timeout: '100ms'\n");
    assert.equal(p?.route.timeoutMs, 0);
    assert.equal(p?.route.retry.perTryTimeoutMs, 100);
  });
});

describe("policyToDocument", () => {
  const seed = parsePolicies(seedText, SEED)[0]!;

  test("writes every field out in document form, durations as text", () => {
    assert.deepEqual(policyToDocument(seed), {
      route: {
        destination: "payments",
        load_balancer: "round_robin",
        timeout: "15s",
        retry_policy: {
          retry_on: "5xx,connect-failure,reset",
          num_retries: 2,
          per_try_timeout: "250ms",
          retry_back_off: { base_interval: "25ms", max_interval: "250ms" },
        },
        retry_buffer_bytes: 65_536,
        tls: { mode: "MUTUAL" },
      },
      outlier_detection: {
        consecutive_5xx: 5,
        consecutive_gateway_failure: 5,
        interval: "10s",
        base_ejection_time: "30s",
        max_ejection_time: "5m",
        max_ejection_percent: 10,
      },
    });
  });

  test("round-trips: parsePolicy(policyToDocument(p)) equals p", () => {
    const samples: Policy[] = [
      seed,
      defaultPolicy("payments"),
      parsePolicy({
        route: {
          destination: "x.y",
          load_balancer: "least_request",
          timeout: "0",
          retry_policy: {
            retry_on: ["retriable-status-codes", "gateway-error", "retriable-4xx", "refused-stream"],
            num_retries: 0,
            per_try_timeout: "1.5s",
            retriable_status_codes: [429, 503],
            retry_back_off: { base_interval: "10ms", max_interval: "1m30s" },
          },
          retry_buffer_bytes: 0,
          tls: { mode: "DISABLE" },
        },
        outlier_detection: { base_ejection_time: "10m", interval: "500ms", max_ejection_percent: 100 },
      }),
    ];
    for (const p of samples) assert.deepEqual(parsePolicy(policyToDocument(p)), p);
  });

  test("the document form is JSON-safe", () => {
    const doc = policyToDocument(seed);
    assert.deepEqual(JSON.parse(JSON.stringify(doc)), doc);
  });
});

describe("validate (generic)", () => {
  const schema = v.strictObject({ listen: v.string(), inner: v.optional(v.strictObject({ drain_timeout: v.string() })) });

  test("defaults to ERR_CONFIG_INVALID and names source and path", () => {
    assert.throws(
      () => validate(schema, { listen: "x", inner: { drain_timout: "1s" } }, { source: "sidecar.yaml" }),
      (e: unknown) =>
        isRemoraError(e, "ERR_CONFIG_INVALID") &&
        e.message === 'sidecar.yaml: inner.drain_timout: unknown field, did you mean "drain_timeout"?',
    );
    assert.throws(() => validate(schema, { listen: 1 }), { message: "listen: expected a string but got 1" });
    assert.throws(() => validate(schema, {}, { pathPrefix: "config" }), { message: "config.listen: required field is missing" });
  });

  test("returns the parsed output when valid", () => {
    assert.deepEqual(validate(schema, { listen: "a" }), { listen: "a" });
  });

  test("suggest finds near names only", () => {
    assert.equal(suggest("retry_polcy", ["route", "retry_policy"]), "retry_policy");
    assert.equal(suggest("loadBalancer", ["load_balancer"]), "load_balancer");
    assert.equal(suggest("colour", ["destination", "timeout"]), undefined);
  });
});
