import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isRemoraError } from "../../src/core/errors.ts";
import { isSpiffeId, parseSpiffeId, trustDomainId, workloadId } from "../../src/core/identity/spiffe-id.ts";

describe("parseSpiffeId", () => {
  const valid: [string, string, string][] = [
    ["spiffe://cluster.local/ns/default/sa/payments", "cluster.local", "/ns/default/sa/payments"],
    ["spiffe://cluster.local", "cluster.local", ""],
    ["spiffe://example.org/Path.With-Mixed_Case/9", "example.org", "/Path.With-Mixed_Case/9"],
    ["spiffe://10.0.0.1/a", "10.0.0.1", "/a"],
    ["spiffe://td_with-dash.and_underscore/x", "td_with-dash.and_underscore", "/x"],
    ["spiffe://a/..a/.b.", "a", "/..a/.b."],
  ];
  for (const [id, trustDomain, path] of valid) {
    test(`accepts ${id}`, () => {
      assert.deepEqual(parseSpiffeId(id), { trustDomain, path });
      assert.equal(isSpiffeId(id), true);
    });
  }

  test("accepts an ID of exactly 2048 bytes", () => {
    const prefix = "spiffe://cluster.local/";
    const id = prefix + "a".repeat(2048 - prefix.length);
    assert.equal(parseSpiffeId(id).path.length, 2048 - "spiffe://cluster.local".length);
  });

  const invalid: [string, RegExp][] = [
    ["", /must start with "spiffe:\/\/"/],
    ["http://cluster.local/ns/a", /must start with "spiffe:\/\/"/],
    ["SPIFFE://cluster.local/ns/a", /lowercase scheme/],
    ["spiffe:/cluster.local/a", /must start with/],
    ["spiffe://", /empty trust domain/],
    ["spiffe:///ns/a", /empty trust domain/],
    ["spiffe://Cluster.local/ns/a", /not lowercase/],
    ["spiffe://user@cluster.local/ns/a", /userinfo/],
    ["spiffe://cluster.local:8443/ns/a", /port/],
    ["spiffe://[::1]/ns/a", /port|characters outside/],
    ["spiffe://clu$ter.local/a", /characters outside a-z 0-9/],
    ["spiffe://cluster.local/ns/a?x=1", /query/],
    ["spiffe://cluster.local/ns/a#frag", /fragment/],
    ["spiffe://cluster.local/ns/a%20b", /percent-encoding/],
    ["spiffe://cluster.local/ns//a", /empty path segment/],
    ["spiffe://cluster.local/ns/a/", /must not end with \//],
    ["spiffe://cluster.local/", /must not end with \//],
    ["spiffe://cluster.local/ns/./a", /"\." path segment/],
    ["spiffe://cluster.local/ns/../a", /"\.\." path segment/],
    ["spiffe://cluster.local/ns/a b", /path segment "a b"/],
    ["spiffe://cluster.local/ns/ü", /path segment "ü"/],
    ["spiffe://" + "a".repeat(256) + "/x", /trust domain longer than 255/],
    ["spiffe://cluster.local/" + "a".repeat(2048), /longer than 2048 bytes/],
  ];
  for (const [id, message] of invalid) {
    test(`refuses ${JSON.stringify(id.length > 60 ? id.slice(0, 60) + "…" : id)}`, () => {
      assert.throws(
        () => parseSpiffeId(id),
        (e: unknown) => isRemoraError(e, "ERR_SPIFFE_ID") && message.test(e.message) && e.message.endsWith("."),
      );
      assert.equal(isSpiffeId(id), false);
    });
  }
});

describe("workloadId", () => {
  test("builds the Kubernetes-style ID", () => {
    assert.equal(workloadId("cluster.local", "default", "payments"), "spiffe://cluster.local/ns/default/sa/payments");
  });
  test("refuses parts that make an invalid ID", () => {
    assert.throws(() => workloadId("cluster.local", "", "payments"), /empty path segment/);
    assert.throws(() => workloadId("Cluster.local", "default", "payments"), /not lowercase/);
    assert.throws(() => workloadId("cluster.local", "default", "pay/ments/"), /must not end with/);
  });
  test("trustDomainId has no path", () => {
    assert.equal(trustDomainId("cluster.local"), "spiffe://cluster.local");
    assert.throws(() => trustDomainId("a:1"), /port/);
  });
});
