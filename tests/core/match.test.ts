import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { B1, B2, endpoints, harness } from "./fake-upstream.ts";
import { yamlPolicy } from "./traffic-support.ts";

const rules = (body: string) =>
  yamlPolicy(`
route:
  destination: payments
  retry_policy: {retry_on: 5xx, num_retries: 2}
  rules:
${body}`);

describe("route.rules matching", () => {
  test("first match wins, in order; a rule without match is the default", async () => {
    const h = harness({
      policies: [
        rules(`
    - name: post-charge
      match: [{path: {prefix: /charge}, method: post}]
      request_headers: {set: {x-rule: post-charge}}
    - name: any-charge
      match: [{path: {prefix: /charge}}]
      request_headers: {set: {x-rule: any-charge}}
    - name: fallback
      request_headers: {set: {x-rule: fallback}}
`),
      ],
    });
    await h.call("http://payments/charge/1", { method: "POST", body: "x" });
    await h.call("http://payments/charge/1");
    await h.call("http://payments/refund");
    assert.deepEqual(h.upstream.calls.map((c) => c.headers.get("x-rule")), ["post-charge", "any-charge", "fallback"]);
    assert.deepEqual(h.eventsOf("rule").map((e) => e.rule), ["post-charge", "any-charge", "fallback"]);
  });

  test("no rule matches and there is no default: 404 naming the destination, nothing sent", async () => {
    const h = harness({ policies: [rules(`    - match: [{path: {exact: /charge}}]\n`)] });
    const res = await h.call("http://payments/charge/1");
    assert.equal(res.status, 404);
    assert.equal(await res.text(), 'remora: no rule of destination "payments" matches GET /charge/1\n');
    assert.equal(h.upstream.calls.length, 0);
    assert.equal((await h.call("http://payments/charge")).status, 200);
  });

  test("path exact, prefix and regex (whole path), method, headers and query parameters", async () => {
    const h = harness({
      policies: [
        rules(`
    - name: exact
      match: [{path: {exact: /a}}]
    - name: regex
      match: [{path: {regex: "/r/[0-9]+"}}]
    - name: header-exact
      match: [{headers: {X-Canary: {exact: "1"}}}]
    - name: header-prefix
      match: [{headers: {user-agent: {prefix: curl/}}}]
    - name: header-regex
      match: [{headers: {x-tenant: {regex: "t[0-9]"}}}]
    - name: header-present
      match: [{headers: {x-debug: {present: true}}}]
    - name: query
      match: [{query_params: {debug: {exact: "1"}}}]
    - name: method-or-prefix
      match: [{method: DELETE}, {path: {prefix: /p/}}]
    - name: default
`),
      ],
    });
    const cases: [string, RequestInit | undefined, string][] = [
      ["http://payments/a", undefined, "exact"],
      ["http://payments/a/b", undefined, "default"],
      ["http://payments/r/42", undefined, "regex"],
      ["http://payments/r/42x", undefined, "default"],
      ["http://payments/x", { headers: { "x-canary": "1" } }, "header-exact"],
      ["http://payments/x", { headers: { "x-canary": "2" } }, "default"],
      ["http://payments/x", { headers: { "user-agent": "curl/8.5" } }, "header-prefix"],
      ["http://payments/x", { headers: { "x-tenant": "t7" } }, "header-regex"],
      ["http://payments/x", { headers: { "x-tenant": "t77" } }, "default"],
      ["http://payments/x", { headers: { "x-debug": "" } }, "header-present"],
      ["http://payments/x?debug=1", undefined, "query"],
      ["http://payments/x?debug=0", undefined, "default"],
      ["http://payments/x", { method: "DELETE" }, "method-or-prefix"],
      ["http://payments/p/1", undefined, "method-or-prefix"],
      ["http://payments/p", undefined, "default"],
    ];
    for (const [url, init] of cases) await h.call(url, init);
    assert.deepEqual(
      h.eventsOf("rule").map((e) => e.rule),
      cases.map((c) => c[2]),
    );
  });
});

describe("per-rule timeout and retry policy", () => {
  test("a rule's retry_policy replaces the destination's; other rules keep the destination's", async () => {
    const h = harness({
      policies: [
        rules(`
    - name: no-retries
      match: [{path: {prefix: /once}}]
      retry_policy: {num_retries: 0}
    - name: default
`),
      ],
    });
    h.upstream.always(B1, 503).always(B2, 503);
    assert.equal((await h.call("http://payments/once")).status, 503);
    assert.equal(h.upstream.calls.length, 1, "num_retries 0: one attempt");
    assert.equal((await h.call("http://payments/other")).status, 503);
    assert.equal(h.upstream.calls.length, 4, "the destination's 2 retries: three attempts");
  });

  test("a rule's timeout bounds its requests: 504 when it expires", async () => {
    const h = harness({
      policies: [
        rules(`
    - name: fast
      match: [{path: {prefix: /fast}}]
      timeout: 1s
    - name: default
`),
      ],
    });
    h.upstream.on(B1, "hang");
    const res = await h.call("http://payments/fast");
    assert.equal(res.status, 504);
    assert.match(await res.text(), /route timeout of 1000 ms/);
    assert.equal(h.clock.now(), 1_000);
  });
});

describe("header edits and path rewrite", () => {
  test("request headers: remove, then set, then add; response headers likewise", async () => {
    const h = harness({
      policies: [
        rules(`
    - request_headers:
        set: {x-env: canary}
        add: {x-hop: remora}
        remove: [x-secret]
      response_headers:
        set: {cache-control: no-store}
        add: {x-served-by: remora}
        remove: [server]
`),
      ],
    });
    h.upstream.always(B1, () => new Response("ok", { headers: { server: "app/1", "cache-control": "max-age=60", "x-served-by": "app" } }));
    const res = await h.call("http://payments/x", { headers: { "x-env": "prod", "x-hop": "app", "x-secret": "s" } });
    const sent = h.upstream.calls[0]?.headers;
    assert.equal(sent?.get("x-env"), "canary");
    assert.equal(sent?.get("x-hop"), "app, remora");
    assert.equal(sent?.has("x-secret"), false);
    assert.equal(res.headers.get("cache-control"), "no-store");
    assert.equal(res.headers.get("x-served-by"), "app, remora");
    assert.equal(res.headers.has("server"), false);
    assert.equal(await res.text(), "ok");
  });

  test("path_prefix replaces the matched prefix, path replaces the whole path; the query is kept", async () => {
    const h = harness({
      policies: [
        rules(`
    - match: [{path: {prefix: /charge}}]
      rewrite: {path_prefix: /v2/charge}
    - match: [{path: {exact: /old}}]
      rewrite: {path: /new}
`),
      ],
    });
    await h.call("http://payments/charge/7?x=1", { method: "POST", body: "amount=1" });
    await h.call("http://payments/old?y=2");
    assert.deepEqual(h.upstream.calls.map((c) => c.url), ["http://payments/v2/charge/7?x=1", "http://payments/new?y=2"]);
    assert.equal(new TextDecoder().decode(h.upstream.calls[0]?.body), "amount=1", "the body survives the rewrite");
  });

  test("a destination without rules is untouched: no rule event", async () => {
    const h = harness({ endpoints: { payments: endpoints(B1) } });
    await h.call();
    assert.equal(h.eventsOf("rule").length, 0);
  });
});
