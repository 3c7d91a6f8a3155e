import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { authorize, parseAuthorization } from "../../src/core/authz.ts";
import { isRemoraError } from "../../src/core/errors.ts";

const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";
const SHOP = "spiffe://cluster.local/ns/default/sa/shop";
const doc = (allow: unknown, destination: unknown = "payments") => ({ authorization: { destination, allow } });

function refuses(d: unknown, message: string, source?: string): void {
  assert.throws(
    () => parseAuthorization(d, source),
    (e: unknown) => {
      assert.ok(isRemoraError(e, "ERR_POLICY_INVALID"), `not ERR_POLICY_INVALID: ${String(e)}`);
      assert.equal(e.message, message);
      return true;
    },
  );
}

describe("parseAuthorization", () => {
  test("the documented example parses, methods upper-cased", () => {
    const a = parseAuthorization(doc([{ from: [ORDERS], methods: ["post"], paths: ["/charge", "/refund/*"] }]));
    assert.deepEqual(a, { destination: "payments", allow: [{ from: [ORDERS], methods: ["POST"], paths: ["/charge", "/refund/*"] }] });
  });
  test("methods and paths are optional; a trust-domain wildcard is accepted", () => {
    const a = parseAuthorization(doc([{ from: ["spiffe://cluster.local/*"] }]));
    assert.deepEqual(a.allow, [{ from: ["spiffe://cluster.local/*"] }]);
  });
  test("a bad SPIFFE ID is named by its path", () => {
    refuses(
      doc([{ from: [ORDERS, "x"] }]),
      'authorization.allow[0].from[1]: "x" is not a SPIFFE ID (spiffe://<trust-domain>/<path>, or spiffe://<trust-domain>/* for a whole trust domain)',
    );
    refuses(doc([{ from: ["spiffe://Bad.Domain/*"] }]), 'authorization.allow[0].from[0]: "spiffe://Bad.Domain/*" is not a SPIFFE ID (spiffe://<trust-domain>/<path>, or spiffe://<trust-domain>/* for a whole trust domain)');
  });
  test("the source is named first", () => {
    refuses(doc([{ from: [] }]), "p.yaml: authorization.allow[0].from: must list at least one SPIFFE ID", "p.yaml");
  });
  test("paths must start with / and hold * only at the end", () => {
    refuses(doc([{ from: [ORDERS], paths: ["charge"] }]), 'authorization.allow[0].paths[0]: "charge" must start with "/"');
    refuses(doc([{ from: [ORDERS], paths: ["/a/*/b"] }]), 'authorization.allow[0].paths[0]: "/a/*/b" may hold "*" only at its end (a prefix match)');
  });
  test("bad methods, unknown fields and a bad destination are refused", () => {
    refuses(doc([{ from: [ORDERS], methods: ["PO ST"] }]), 'authorization.allow[0].methods[0]: "PO ST" is not an HTTP method');
    refuses(doc([{ from: [ORDERS], method: ["POST"] }]), 'authorization.allow[0].method: unknown field, did you mean "methods"?');
    refuses(doc([], "Payments"), 'authorization.destination: "Payments" is not a service name (lowercase letters, digits and "-")');
    refuses({ authorization: { destination: "payments" } }, "authorization.allow: required field is missing");
  });
});

describe("authorize", () => {
  const auth = parseAuthorization(doc([{ from: [ORDERS], methods: ["POST"], paths: ["/charge", "/refund/*"] }, { from: [SHOP] }]));
  const call = (identity: string | undefined, method: string, path: string) => authorize(auth, { ...(identity ? { identity } : {}), method, path });

  test("no document: any caller is allowed", () => {
    assert.deepEqual(authorize(undefined, { identity: ORDERS, method: "DELETE", path: "/x" }), { allowed: true });
  });
  test("an exact ID with a matching method and exact path is allowed", () => {
    assert.equal(call(ORDERS, "POST", "/charge").allowed, true);
    assert.equal(call(ORDERS, "post", "/charge").allowed, true);
  });
  test("a trailing * is a prefix match; without it the path must be exact", () => {
    assert.equal(call(ORDERS, "POST", "/refund/42").allowed, true);
    assert.equal(call(ORDERS, "POST", "/refund").allowed, false);
    assert.equal(call(ORDERS, "POST", "/charge/extra").allowed, false);
  });
  test("a method outside the rule is denied, with a sentence naming caller, method, path and destination", () => {
    assert.deepEqual(call(ORDERS, "GET", "/charge"), { allowed: false, reason: `${ORDERS} is not allowed to GET /charge on payments` });
  });
  test("a rule without methods and paths allows everything for its callers", () => {
    assert.equal(call(SHOP, "DELETE", "/anything").allowed, true);
  });
  test("an ID in no rule is denied, and so is a plaintext caller", () => {
    assert.equal(call("spiffe://cluster.local/ns/default/sa/intruder", "POST", "/charge").allowed, false);
    assert.deepEqual(call(undefined, "POST", "/charge"), { allowed: false, reason: "an unauthenticated caller is not allowed to POST /charge on payments" });
  });
  test("a trust-domain wildcard matches only that trust domain", () => {
    const td = parseAuthorization(doc([{ from: ["spiffe://cluster.local/*"] }]));
    assert.equal(authorize(td, { identity: ORDERS, method: "GET", path: "/" }).allowed, true);
    assert.equal(authorize(td, { identity: "spiffe://cluster.local.evil/ns/x/sa/y", method: "GET", path: "/" }).allowed, false);
    assert.equal(authorize(td, { identity: "spiffe://other.local/ns/default/sa/orders", method: "GET", path: "/" }).allowed, false);
  });
  test("an empty allow list denies everyone", () => {
    assert.equal(authorize(parseAuthorization(doc([])), { identity: ORDERS, method: "GET", path: "/" }).allowed, false);
  });
});
