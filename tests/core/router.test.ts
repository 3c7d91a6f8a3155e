import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { destinationName, logicalName, requestHost } from "../../src/core/router.ts";

describe("destinationName", () => {
  const cases: [string, string][] = [
    ["http://payments/charge", "payments"],
    ["http://payments:80/charge", "payments"],
    ["http://PAYMENTS:8080/", "payments"],
    ["http://payments.default/", "payments"],
    ["http://payments.default.svc/", "payments"],
    ["http://payments.default.svc.cluster.local/", "payments"],
    ["http://payments.svc.cluster.local/", "payments"],
    ["http://payments.default.svc.cluster.local.:9000/", "payments"],
    ["http://api.example.com/", "api.example.com"],
    ["http://192.0.2.7:8080/", "192.0.2.7"],
  ];
  for (const [url, name] of cases) {
    test(`${url} -> ${name}`, () => {
      assert.equal(destinationName(new Request(url)), name);
    });
  }

  test("uses the authority of the request URL (what the client asked for)", () => {
    const req = new Request("http://orders.default.svc:80/x", { headers: { host: "ignored" } });
    assert.equal(destinationName(req), "orders");
  });

  test("requestHost keeps the host as written, lowercased, without port", () => {
    assert.equal(requestHost(new Request("http://Paymnts.Default:80/")), "paymnts.default");
  });

  test("logicalName leaves plain names alone", () => {
    assert.equal(logicalName("payments"), "payments");
    assert.equal(logicalName("Payments."), "payments");
  });
});
