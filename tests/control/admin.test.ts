// The admin API: apply (validated whole, nothing changes on error), get, delete.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { id, setup } from "./support.ts";

const TWO_DOCS = `route:
  destination: payments
  retry_policy:
    num_retries: 2
  tls:
    mode: ISTIO_MUTUAL
---
authorization:
  destination: payments
  allow:
    - from: [spiffe://cluster.local/ns/default/sa/orders]
      methods: [post]
      paths: [/charge]
`;

describe("admin API", () => {
  test("every admin route refuses a missing or wrong admin token, and an SVID", async () => {
    const ctx = await setup();
    for (const [method, path] of [["GET", "/v1/policies"], ["PUT", "/v1/policies"], ["DELETE", "/v1/policies/x"], ["GET", "/v1/endpoints"], ["GET", "/v1/proxies"]] as const) {
      assert.equal((await ctx.call(method, path)).status, 401, `${method} ${path}`);
      assert.equal((await ctx.call(method, path, { token: "wrong" })).status, 401, `${method} ${path}`);
      assert.equal((await ctx.call(method, path, { peer: id("default", "payments") })).status, 401, `${method} ${path}`);
    }
  });

  test("apply stores policy and authorization documents and bumps the version", async () => {
    const ctx = await setup();
    const res = await ctx.admin("PUT", "/v1/policies", { text: TWO_DOCS });
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { applied: ["payments"], version: "2" });
    const got = (await (await ctx.admin("GET", "/v1/policies")).json()) as { policies: unknown[]; authorization: unknown[] };
    assert.equal(got.policies.length, 1);
    assert.deepEqual(got.authorization, [
      { authorization: { destination: "payments", allow: [{ from: ["spiffe://cluster.local/ns/default/sa/orders"], methods: ["POST"], paths: ["/charge"] }] } },
    ]);
  });

  test("JSON bodies are accepted too", async () => {
    const ctx = await setup();
    const res = await ctx.admin("PUT", "/v1/policies", { body: { route: { destination: "orders" } } });
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { applied: string[] }).applied, ["orders"]);
  });

  test("an invalid document is refused with 400 naming file, document and field; nothing changes", async () => {
    const ctx = await setup();
    await ctx.admin("PUT", "/v1/policies", { text: TWO_DOCS });
    const bad = `route:\n  destination: orders\n---\nroute:\n  destination: payments\n  retry_policy:\n    num_retries: 2\n    per_try_timeout: 25x\n`;
    const res = await ctx.admin("PUT", "/v1/policies?source=policies.yaml", { text: bad });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: string; code: string };
    assert.equal(body.code, "ERR_POLICY_INVALID");
    assert.match(body.error, /^policies\.yaml \(document 2\): route\.retry_policy\.per_try_timeout: /);
    assert.equal(ctx.plane.version, "2");
    const got = (await (await ctx.admin("GET", "/v1/policies")).json()) as { policies: { route: { destination: string } }[] };
    assert.deepEqual(got.policies.map((p) => p.route.destination), ["payments"]);

    const authz = await ctx.admin("PUT", "/v1/policies", { text: "authorization:\n  destination: payments\n  allow:\n    - from: [not-an-id]\n" });
    assert.equal(authz.status, 400);
    assert.match(((await authz.json()) as { error: string }).error, /authorization\.allow\[0\]\.from\[0\]/);
    const yaml = await ctx.admin("PUT", "/v1/policies", { text: "route: [\n" });
    assert.equal(yaml.status, 400);
    assert.equal(ctx.plane.version, "2");
  });

  test("delete removes a destination's policy and authorization; unknown is 404", async () => {
    const ctx = await setup();
    await ctx.admin("PUT", "/v1/policies", { text: TWO_DOCS });
    const res = await ctx.admin("DELETE", "/v1/policies/payments");
    assert.equal(res.status, 200);
    assert.deepEqual(await (await ctx.admin("GET", "/v1/policies")).json(), { policies: [], authorization: [] });
    assert.equal((await ctx.admin("DELETE", "/v1/policies/payments")).status, 404);
  });

  test("GET /v1/endpoints lists endpoints with proxy and last_seen", async () => {
    const ctx = await setup();
    await ctx.call("PUT", "/v1/proxies/p1", { peer: id("default", "payments"), body: { service: "payments", address: "192.0.2.1:15006" } });
    const eps = (await (await ctx.admin("GET", "/v1/endpoints")).json()) as Record<string, unknown[]>;
    assert.deepEqual(eps, { payments: [{ address: "192.0.2.1:15006", identity: id("default", "payments"), proxy: "p1", last_seen: new Date(ctx.clock.now()).toISOString() }] });
  });

  test("unknown routes are a JSON 404", async () => {
    const ctx = await setup();
    const res = await ctx.admin("GET", "/v1/nothing");
    assert.equal(res.status, 404);
    assert.equal(((await res.json()) as { code: string }).code, "ERR_NOT_FOUND");
  });
});
