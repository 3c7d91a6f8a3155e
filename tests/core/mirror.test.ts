import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { B1, B2, B3, endpoints, harness } from "./fake-upstream.ts";
import { seeded, yamlPolicy } from "./traffic-support.ts";

const mirrored = (percent = 100) =>
  yamlPolicy(`
route:
  destination: payments
  rules:
    - name: shadow
      mirror: {destination: payments-shadow, percent: ${percent}}
`);
const eps = { payments: endpoints(B1), "payments-shadow": [{ address: B3 }] };

describe("mirroring", () => {
  test("the mirror destination receives a copy (body, method, -shadow authority); the caller gets the real answer", async () => {
    const h = harness({ policies: [mirrored()], endpoints: eps });
    const res = await h.call("http://payments/charge?x=1", { method: "POST", body: '{"amount":42}' });
    assert.equal(await res.text(), `200 from ${B1}`);
    await h.clock.run(Promise.resolve());
    const copy = h.upstream.callsTo(B3)[0];
    assert.equal(copy?.method, "POST");
    assert.equal(copy?.url, "http://payments-shadow/charge?x=1");
    assert.equal(new TextDecoder().decode(copy?.body), '{"amount":42}');
    assert.equal(new TextDecoder().decode(h.upstream.callsTo(B1)[0]?.body), '{"amount":42}');
    assert.deepEqual(h.eventsOf("mirror").map((e) => [e.mirror, e.result, e.status]), [["payments-shadow", "success", 200]]);
  });

  test("never awaited: a mirror that hangs changes neither the response nor its latency", async () => {
    const h = harness({ policies: [mirrored()], endpoints: eps });
    h.upstream.always(B3, "hang");
    h.upstream.always(B1, { delayMs: 20, then: 200 });
    const res = await h.call();
    assert.equal(res.status, 200);
    assert.equal(h.eventsOf("response")[0]?.durationMs, 20);
    assert.equal(h.eventsOf("mirror").length, 0, "the copy is still pending");
  });

  test("mirror failures are swallowed and counted", async () => {
    const h = harness({ policies: [mirrored()], endpoints: eps });
    h.upstream.always(B3, "connect-failure");
    assert.equal((await h.call()).status, 200);
    await h.clock.run(Promise.resolve());
    const [e] = h.eventsOf("mirror");
    assert.equal(e?.result, "failure");
    assert.match(e?.message ?? "", /connect-failure/);
    assert.equal(h.eventsOf("retry").length, 0);
  });

  test("a mirror destination with no endpoints is counted as a failure, the caller is unaffected", async () => {
    const h = harness({ policies: [mirrored()], endpoints: { payments: endpoints(B1, B2) } });
    assert.equal((await h.call()).status, 200);
    assert.deepEqual(h.eventsOf("mirror").map((e) => e.message), ['no endpoints for mirror destination "payments-shadow"']);
  });

  test("percent: about 10% of 2,000 seeded requests are copied", async () => {
    const h = harness({ policies: [mirrored(10)], endpoints: eps, random: seeded(5) });
    for (let i = 0; i < 2_000; i++) await h.call();
    const share = h.upstream.callsTo(B3).length / 20;
    assert.ok(Math.abs(share - 10) <= 2, `${share}% mirrored`);
  });

  test("a body too large to buffer is not mirrored (it can be read once)", async () => {
    const h = harness({ policies: [mirrored()], endpoints: eps });
    const big = "x".repeat(70_000);
    assert.equal((await h.call("http://payments/upload", { method: "POST", body: big })).status, 200);
    assert.equal(h.upstream.callsTo(B3).length, 0);
  });
});
