// On-demand config in the sidecar: discovery waits a bounded time, per-destination answers
// apply or are refused one by one, and the pipeline's patch touches only what changed.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createSubscriptions } from "../../src/sidecar/control/subscriptions.ts";
import { parseAnswer } from "../../src/sidecar/control/destinations.ts";
import { patchMesh } from "../../src/sidecar/control/mesh-view.ts";
import { createOutbound } from "../../src/core/pipeline.ts";
import { defaultPolicy } from "../../src/core/policy/defaults.ts";

const flush = async () => {
  for (let i = 0; i < 50; i++) await Promise.resolve();
};
const ID = "spiffe://cluster.local/ns/default/sa/payments";

describe("subscriptions", () => {
  test("a new name subscribes, wakes the watch loop and waits for its answer", async () => {
    const clock = new FakeClock(0);
    const subs = createSubscriptions({ clock, declared: ["ledger"] });
    let woken = 0;
    subs.onSubscribe(() => woken++);
    assert.deepEqual(subs.held(), { ledger: "" });
    let verdict: string | undefined | null = null;
    void subs.discover("payments").then((v) => (verdict = v));
    await flush();
    assert.equal(woken, 1);
    assert.deepEqual(subs.held(), { ledger: "", payments: "" });
    assert.equal(verdict, null, "still waiting");
    subs.answered({ payments: { version: "v1", found: true } }, {});
    await flush();
    assert.equal(verdict, undefined, "found: the request proceeds");
    assert.equal(subs.held().payments, "v1");
    assert.equal(await subs.discover("payments"), undefined, "held: no wait");
  });

  test("unknown service and discovery timeout answer sentences naming the destination", async () => {
    const clock = new FakeClock(0);
    const subs = createSubscriptions({ clock, timeoutMs: 5000 });
    const missing = subs.discover("nosuch");
    await flush();
    subs.answered({ nosuch: { version: "m", found: false } }, {});
    assert.match(String(await missing), /no such service "nosuch"/);

    const slow = subs.discover("payments");
    await flush();
    clock.advance(5000);
    assert.match(String(await slow), /discovery of "payments" timed out after 5000 ms/);
    assert.match(String(await subs.discover("Bad_Host")), /no route for host "Bad_Host"/);
  });

  test("a refused update keeps a destination held before; a first version refused is reported", async () => {
    const subs = createSubscriptions({ clock: new FakeClock(0), declared: ["payments", "ledger"] });
    subs.answered({ payments: { version: "v1", found: true } }, {});
    subs.answered({ payments: { version: "v2", found: true }, ledger: { version: "x", found: true } }, { payments: "bad", ledger: "bad policy" });
    assert.equal(await subs.discover("payments"), undefined);
    assert.equal(subs.held().payments, "v2", "the refused version is not asked for again");
    assert.match(String(await subs.discover("ledger")), /config for "ledger" was refused: bad policy/);
  });
});

describe("parseAnswer", () => {
  test("a bad destination is refused alone; the good one applies; unknown ones are removed", () => {
    const a = parseAnswer({
      version: "7",
      destinations: {
        payments: { version: "a", found: true, policy: { route: { destination: "payments", retry_policy: { num_retries: 1 } } }, endpoints: [{ address: "192.0.2.1:15006", identity: ID }], vip: "240.240.0.1" },
        ledger: { version: "b", found: true, policy: { route: { destination: "ledger", retry_policy: { num_retries: "many" } } }, endpoints: [] },
        gone: { version: "c", found: false },
      },
      authorization: { version: "z", document: null },
    });
    assert.deepEqual(Object.keys(a.update.set), ["payments"]);
    assert.equal(a.update.set.payments?.policy?.route.retry.numRetries, 1);
    assert.deepEqual(a.update.remove, ["gone"]);
    assert.match(a.rejected.ledger ?? "", /destination "ledger".*num_retries/);
    assert.deepEqual(a.seen.ledger, { version: "b", found: true });
    assert.deepEqual(a.authorization, { version: "z" });
  });
});

describe("Outbound.patch", () => {
  test("replaces only the named destinations and keeps the others' state object", () => {
    const clock = new FakeClock(0);
    const out = createOutbound(
      { policies: [], endpoints: { payments: [{ address: "192.0.2.1:15006" }], ledger: [{ address: "192.0.2.2:15006" }] } },
      { send: async () => new Response("ok"), clock, random: () => 0, defaultPolicy },
    );
    const before = out.destinations();
    out.patch({ set: { payments: { endpoints: [{ address: "192.0.2.1:15006" }, { address: "192.0.2.3:15006" }] } }, remove: ["ledger"] });
    const after = out.destinations();
    assert.deepEqual(after.map((d) => d.name), ["payments"]);
    assert.deepEqual(after[0]?.endpoints.map((e) => e.address), ["192.0.2.1:15006", "192.0.2.3:15006"]);
    assert.equal(before.length, 2);
    out.patch({ set: { orders: { endpoints: [] } } });
    assert.deepEqual(out.destinations().map((d) => d.name).sort(), ["orders", "payments"]);
  });

  test("patchMesh keeps the admin view in step: policies, endpoints and VIPs per destination", () => {
    const mesh = patchMesh({ policies: [], endpoints: { ledger: [] }, version: "1" }, { version: "2", set: { payments: { endpoints: [{ address: "192.0.2.1:15006" }], vip: "240.240.0.1" } }, remove: ["ledger"] });
    assert.deepEqual(Object.keys(mesh.endpoints), ["payments"]);
    assert.deepEqual(mesh.services, { payments: { vip: "240.240.0.1" } });
    assert.equal(mesh.version, "2");
  });
});
