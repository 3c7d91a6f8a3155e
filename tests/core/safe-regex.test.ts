import { test } from "node:test";
import assert from "node:assert/strict";
import { unsafeRegexReason } from "../../src/core/policy/safe-regex.ts";
import { parsePolicy } from "../../src/core/policy/parse.ts";
import { isRemoraError } from "../../src/core/errors.ts";

test("patterns that backtrack catastrophically are refused, with why", () => {
  for (const p of ["(a+)+$", "(a*)*", "(a|ab)*c", "(x+x+)+y", "((ab)*)+", "(\\d+){2,}", "(a|b){3,}"]) {
    assert.match(unsafeRegexReason(p) ?? "", /repeated group may not itself repeat or alternate/, p);
  }
  assert.match(unsafeRegexReason("(a)\\1") ?? "", /backreferences/);
  assert.match(unsafeRegexReason("foo(?=bar)") ?? "", /lookarounds/);
  assert.match(unsafeRegexReason("(?<!x)y") ?? "", /lookarounds/);
});

test("the patterns routes are made of are accepted", () => {
  for (const p of ["/api/v[0-9]+/.*", "^/(users|orders)/[0-9]+$", "/charge(/.*)?", "[a-z]+-(canary|stable)", "(ab){2}", "(\\+[0-9]+)?", "[(a+)+]*", "x{2,3}", "\\(a+\\)+"]) {
    assert.equal(unsafeRegexReason(p), undefined, p);
  }
});

test("a policy with such a regex is refused naming the field", () => {
  const doc = { route: { destination: "payments", rules: [{ name: "r", match: [{ path: { regex: "(a+)+$" } }] }] } };
  assert.throws(
    () => parsePolicy(doc, "p.yaml"),
    (e: unknown) => isRemoraError(e) && /route\.rules\[0\]\.match\[0\]\.path\.regex/.test(e.message) && /exponential time/.test(e.message),
  );
});
