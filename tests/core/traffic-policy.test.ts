import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { isRemoraError } from "../../src/core/errors.ts";
import { parsePolicies, parsePolicy, policyToDocument } from "../../src/core/policy/parse.ts";
import type { RouteRule } from "../../src/core/policy/types.ts";
import { yamlPolicy } from "./traffic-support.ts";

const EXAMPLES = ["policies/payments.yaml", "policies/payments-canary.yaml", "policies/payments-chaos.yaml", "policies/payments-v2-rewrite.yaml"];
const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), "utf8");

function refuses(doc: unknown, message: string): void {
  assert.throws(
    () => parsePolicy(doc, "p.yaml"),
    (e: unknown) => {
      assert.ok(isRemoraError(e, "ERR_POLICY_INVALID"), `not ERR_POLICY_INVALID: ${String(e)}`);
      assert.equal(e.message, message);
      return true;
    },
  );
}

const withRule = (rule: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ route: { destination: "payments", rules: [rule] }, ...extra });

describe("traffic rules in policy documents", () => {
  test("every example policy parses and survives policyToDocument -> parsePolicy unchanged", () => {
    for (const file of EXAMPLES) {
      for (const p of parsePolicies(read(file), file)) {
        assert.deepEqual(parsePolicy(policyToDocument(p)), p, file);
      }
    }
  });

  test("the canary example means what it says", () => {
    const [p] = parsePolicies(read("policies/payments-canary.yaml"));
    assert.deepEqual(p?.route.rateLimit, { requestsPerSecond: 100, burst: 200 });
    assert.deepEqual(p?.subsets, [{ name: "v1", labels: { version: "v1" } }, { name: "v2", labels: { version: "v2" } }]);
    const canary = p?.route.rules?.[1];
    const expected: RouteRule = {
      name: "canary",
      match: [{ path: { kind: "prefix", value: "/charge" }, method: "POST" }],
      split: [{ subset: "v1", weight: 90 }, { subset: "v2", weight: 10 }],
      requestHeaders: { set: { "x-payments-route": "canary" }, add: {}, remove: ["x-debug"] },
      timeoutMs: 2_000,
      rateLimit: { requestsPerSecond: 10, burst: 20 },
    };
    assert.deepEqual(canary, expected);
    assert.deepEqual(p?.route.rules?.map((r) => r.name), ["testers", "canary", "default"]);
    assert.deepEqual(p?.route.rules?.[2]?.match, []);
  });

  test("defaults: rule names by index, percentages 100, burst = rate rounded up, header names lowercase", () => {
    const p = yamlPolicy(`
route:
  destination: payments
  rate_limit: {requests_per_second: 2.5}
  rules:
    - fault: {abort: {status: 503}, delay: {fixed: 1s}, match_headers: {X-Fault: {present: true}}}
      mirror: {destination: shadow}
      request_headers: {set: {X-A: "1"}}
    - retry_policy: {}
`);
    const [a, b] = p.route.rules ?? [];
    assert.equal(a?.name, "rule-0");
    assert.deepEqual(a?.fault, { delay: { ms: 1_000, percent: 100 }, abort: { status: 503, percent: 100 }, matchHeaders: { "x-fault": { kind: "present", value: "" } } });
    assert.deepEqual(a?.mirror, { destination: "shadow", percent: 100 });
    assert.deepEqual(a?.requestHeaders?.set, { "x-a": "1" });
    assert.equal(a?.retry, undefined, "no retry_policy: the destination's applies");
    assert.equal(b?.retry?.numRetries, 2, "an empty retry_policy is Istio's default");
    assert.deepEqual(p.route.rateLimit, { requestsPerSecond: 2.5, burst: 3 });
  });

  test("a policy without rules has no traffic fields at all", () => {
    const p = parsePolicy({ route: { destination: "payments" } });
    assert.equal("rules" in p.route, false);
    assert.equal("rateLimit" in p.route, false);
    assert.equal("subsets" in p, false);
  });

  test("errors name the field path", () => {
    const subsets = { subsets: [{ name: "v1", labels: { version: "v1" } }] };
    refuses(withRule({ split: [{ subset: "v1", weight: 90 }, { subset: "v1", weight: -1 }] }, subsets), "p.yaml: route.rules[0].split[1].weight: -1 is less than the minimum of 0");
    refuses(withRule({ split: [{ subset: "v1", weight: 1.5 }] }, subsets), "p.yaml: route.rules[0].split[0].weight: expected a whole number but got 1.5");
    refuses(withRule({ split: [{ subset: "v2", weight: 10 }] }, subsets), 'p.yaml: route.rules[0].split[0].subset: "v2" is not defined under subsets');
    refuses(withRule({ split: [{ subset: "v1", weight: 0 }] }, subsets), "p.yaml: route.rules[0].split: weights must add up to more than 0");
    refuses(withRule({ match: [{ path: { exact: "/a", prefix: "/b" } }] }), "p.yaml: route.rules[0].match[0].path: give exactly one of exact, prefix, regex");
    refuses(withRule({ match: [{ path: { prefix: "charge" } }] }), 'p.yaml: route.rules[0].match[0].path.prefix: must start with "/"');
    refuses(withRule({ match: [{ headers: { "x-a": { regex: "(" } } }] }), 'p.yaml: route.rules[0].match[0].headers.x-a.regex: "(" is not a valid regular expression');
    refuses(withRule({ match: [{ method: "GE T" }] }), 'p.yaml: route.rules[0].match[0].method: "GE T" is not an HTTP method');
    refuses(withRule({ fault: {} }), "p.yaml: route.rules[0].fault: give a delay, an abort or both");
    refuses(withRule({ fault: { abort: { status: 503, percent: 150 } } }), "p.yaml: route.rules[0].fault.abort.percent: 150 is not a percentage from 0 to 100");
    refuses(withRule({ fault: { delay: { fixed: "5" } } }), 'p.yaml: route.rules[0].fault.delay.fixed: "5" is not a duration');
    refuses(withRule({ mirror: { destination: "Bad_Name" } }), 'p.yaml: route.rules[0].mirror.destination: "Bad_Name" is not a valid destination name, use lowercase letters, digits, "-" and "."');
    refuses(withRule({ rate_limit: { requests_per_second: 0 } }), "p.yaml: route.rules[0].rate_limit.requests_per_second: 0 must be greater than 0");
    refuses(withRule({ rewrite: {} }), "p.yaml: route.rules[0].rewrite: give exactly one of path, path_prefix");
    refuses(withRule({ retry_policy: { retry_on: "5xx", retriable_status_codes: [503] } }), "p.yaml: route.rules[0].retry_policy.retriable_status_codes: has no effect unless retry_on includes retriable-status-codes");
    refuses(withRule({ timeout: "2x" }), 'p.yaml: route.rules[0].timeout: "2x" is not a duration');
    refuses({ route: { destination: "payments", rules: [{ name: "a" }, { name: "a" }] } }, 'p.yaml: route.rules[1].name: "a" is already the name of an earlier rule');
    refuses({ route: { destination: "payments" }, subsets: [{ name: "v1", labels: {} }, { name: "v1", labels: {} }] }, 'p.yaml: subsets[1].name: "v1" is defined twice');
    refuses(withRule({ splitt: [] }), 'p.yaml: route.rules[0].splitt: unknown field, did you mean "split"?');
  });
});
