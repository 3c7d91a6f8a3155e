// On-demand config in the sidecar: discovery waits a bounded time, per-destination answers
// apply or are refused one by one, and the pipeline's patch touches only what changed.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createSubscriptions } from "../../src/sidecar/control/subscriptions.ts";
import { parseAnswer } from "../../src/sidecar/control/destinations.ts";
import { heldDestinations, patchMesh } from "../../src/sidecar/control/mesh-view.ts";
import { onDemandWatchLoop } from "../../src/sidecar/control/ondemand-watch.ts";
import type { DestinationUpdate } from "../../src/sidecar/control/destinations.ts";
import type { ControlResponse } from "../../src/sidecar/control-client.ts";
import { normalizeOnDemandArgs, onDemandFlags } from "../../src/cli/proxy-ondemand.ts";
import { silentLogger } from "../../src/sidecar/logger.ts";
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
    assert.equal(await subs.discover("10.250.0.12"), undefined, "an address is left to the router (its own 404), never subscribed");
    assert.equal("10.250.0.12" in subs.held(), false);
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

describe("unused destinations", () => {
  const HOUR = 3_600_000;

  test("a discovered name not requested for the idle limit is dropped; a request resets the limit; declared names stay", async () => {
    const clock = new FakeClock(0);
    const subs = createSubscriptions({ clock, declared: ["ledger"], unwatchAfterMs: HOUR });
    const first = subs.discover("payments");
    subs.answered({ payments: { version: "v1", found: true }, ledger: { version: "l1", found: true } }, {});
    assert.equal(await first, undefined);
    clock.advance(HOUR - 60_000);
    assert.equal(await subs.discover("payments"), undefined, "held: proceeds, and counts as a use");
    clock.advance(2 * 60_000);
    assert.deepEqual(subs.expire(), [], "last used two minutes ago: kept");
    clock.advance(HOUR);
    assert.deepEqual(subs.expire(), ["payments"]);
    assert.deepEqual(subs.held(), { ledger: "l1" }, "declared: never dropped");
    let woken = 0;
    subs.onSubscribe(() => woken++);
    void subs.discover("payments");
    await flush();
    assert.equal(woken, 1, "called again: subscribed again");
    assert.deepEqual(subs.held(), { ledger: "l1", payments: "" });
  });

  test("0 means never; a name still waiting for its first answer is not dropped", async () => {
    const clock = new FakeClock(0);
    const never = createSubscriptions({ clock, unwatchAfterMs: 0 });
    void never.discover("payments");
    clock.advance(100 * HOUR);
    assert.deepEqual(never.expire(), []);
    const waiting = createSubscriptions({ clock, unwatchAfterMs: 1000, timeoutMs: 5000 });
    const verdict = waiting.discover("payments");
    await flush();
    clock.advance(2000);
    assert.deepEqual(waiting.expire(), [], "a request is waiting on it");
    clock.advance(3000);
    assert.match(String(await verdict), /timed out/);
    assert.deepEqual(waiting.expire(), ["payments"]);
  });

  test("the watch loop removes a dropped name from the config and stops naming it", async () => {
    const clock = new FakeClock(0);
    const subs = createSubscriptions({ clock, declared: ["ledger"], unwatchAfterMs: HOUR });
    const calls: { body: { destinations: Record<string, string> }; answer: (r: ControlResponse) => void }[] = [];
    const updates: DestinationUpdate[] = [];
    const stop = new AbortController();
    void subs.discover("payments");
    const loop = onDemandWatchLoop(
      {
        call: (_m, _p, body, o) =>
          new Promise((answer, fail) => {
            calls.push({ body: body as { destinations: Record<string, string> }, answer });
            // As the client's call does: its own shutdown and a resubscription both cancel the poll.
            for (const signal of [o.signal, stop.signal]) signal?.addEventListener("abort", () => fail(new Error("aborted")), { once: true });
          }),
        subscriptions: subs,
        proxyId: "orders-1",
        waitSeconds: 30,
        log: silentLogger,
        backoff: async () => {},
        stopped: stop.signal,
        ack: async () => {},
        applied: () => {},
      },
      { applyMesh() {}, applyAuthorization() {}, setIdentity() {}, applyDestinations: (u) => void updates.push(u) },
    );
    await flush();
    assert.deepEqual(calls[0]?.body.destinations, { ledger: "", payments: "" });
    const endpoint = { address: "192.0.2.1:15006", identity: ID };
    calls[0]!.answer({ status: 200, json: { version: "5", destinations: { ledger: { version: "l1", found: true, endpoints: [] }, payments: { version: "p1", found: true, endpoints: [endpoint] } } } });
    await flush();
    assert.deepEqual(Object.keys(updates[0]?.set ?? {}).sort(), ["ledger", "payments"]);
    clock.advance(HOUR + 1);
    calls[1]!.answer({ status: 304, json: undefined });
    await flush();
    assert.deepEqual(updates[1], { version: "5", set: {}, remove: ["payments"] });
    assert.deepEqual(calls[2]?.body.destinations, { ledger: "l1" });
    stop.abort();
    await loop;
    assert.equal(calls.length, 3);
  });

  test("a mirror's destination is watched with its source and kept as long as the source is", async () => {
    const clock = new FakeClock(0);
    const subs = createSubscriptions({ clock, unwatchAfterMs: HOUR });
    const first = subs.discover("payments");
    subs.answered({ payments: { version: "p1", found: true } }, {});
    assert.equal(await first, undefined);
    let woken = 0;
    subs.onSubscribe(() => woken++);
    subs.references("payments", ["payments-shadow", "payments"]);
    assert.equal(woken, 1);
    assert.deepEqual(subs.held(), { payments: "p1", "payments-shadow": "" });
    clock.advance(2 * HOUR);
    await subs.discover("payments");
    assert.deepEqual(subs.expire(), [], "payments is in use, so is its mirror target");
    clock.advance(2 * HOUR);
    assert.deepEqual(subs.expire().sort(), ["payments", "payments-shadow"]);
  });

  test("heldDestinations counts names with endpoints, a policy or a VIP once each", () => {
    const policy = { route: { destination: "payments.default.svc.cluster.local" } } as unknown as Parameters<typeof heldDestinations>[0]["policies"][number];
    assert.equal(heldDestinations({ policies: [policy], endpoints: { payments: [], ledger: [] }, services: { orders: { vip: "240.240.0.3" }, ledger: { vip: "240.240.0.2" } } }), 3);
    assert.equal(heldDestinations({ policies: [], endpoints: {} }), 0);
  });
});

describe("config mode flags", () => {
  test("on-demand is the default; --on-demand is accepted and changes nothing; --whole-mesh opts out", () => {
    const defaults = { declared: [], timeoutMs: 5000, unwatchAfterMs: 3_600_000 };
    assert.deepEqual(onDemandFlags({}, undefined), defaults);
    assert.deepEqual(onDemandFlags({ onDemand: true }, undefined), defaults);
    assert.equal(onDemandFlags({ wholeMesh: true }, undefined), undefined);
    assert.equal(onDemandFlags({ wholeMesh: true, destinations: ["payments"] }, undefined), undefined, "the whole mesh holds them too");
    assert.throws(() => onDemandFlags({ wholeMesh: true, onDemand: true }, undefined), /--on-demand and --whole-mesh contradict/);
    assert.throws(() => onDemandFlags({ wholeMesh: true, unwatchAfter: "1h" }, undefined), /--unwatch-after goes with on-demand/);
  });

  test("destinations from flags or REMORA_DESTINATIONS, durations checked", () => {
    assert.deepEqual(onDemandFlags({ destinations: ["payments,Ledger", " payments"] }, "ignored")?.declared, ["payments", "ledger"]);
    assert.deepEqual(onDemandFlags({}, "a,b")?.declared, ["a", "b"]);
    assert.throws(() => onDemandFlags({ destinations: ["Pay_ments"] }, undefined), /--destinations: "pay_ments" is not a service name/);
    assert.equal(onDemandFlags({ unwatchAfter: "0", discoveryTimeout: "250ms" }, undefined)?.unwatchAfterMs, 0);
    assert.equal(onDemandFlags({ discoveryTimeout: "250ms" }, undefined)?.timeoutMs, 250);
    assert.throws(() => onDemandFlags({ unwatchAfter: "soon" }, undefined), /--unwatch-after "soon" is not a duration/);
  });

  test("--on-demand=false reads as --whole-mesh, --on-demand=true as --on-demand", () => {
    assert.deepEqual(normalizeOnDemandArgs(["--on-demand=false", "--on-demand=TRUE", "--app", "x"]), ["--whole-mesh", "--on-demand", "--app", "x"]);
    assert.throws(() => normalizeOnDemandArgs(["--on-demand=maybe"]), /--on-demand=maybe must be true or false/);
  });
});
