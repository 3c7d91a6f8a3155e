// The sidecar's side of service VIPs: the snapshot's `services` section is validated, and a
// request whose Host is a VIP routes to that service, sharing its policy and outlier state.

import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSnapshot } from "../../src/sidecar/control/snapshot.ts";
import { readdressVip, vipTable } from "../../src/core/router.ts";
import { isRemoraError } from "../../src/core/errors.ts";
import { B1, B2, harness, policy } from "../core/fake-upstream.ts";

test("a snapshot's services section is parsed, and a bad VIP refuses the whole snapshot", () => {
  const snap = parseSnapshot({ version: "3", services: { Payments: { vip: "240.240.0.2" } } });
  assert.deepEqual(snap.services, { payments: { vip: "240.240.0.2" } });
  assert.equal(parseSnapshot({ version: "3" }).services, undefined, "a control plane without VIPs sends none");
  assert.throws(
    () => parseSnapshot({ version: "4", services: { payments: { vip: "payments.local" } } }),
    (e: unknown) => isRemoraError(e, "ERR_CONFIG_INVALID") && /services.*payments.*vip.*is not an IPv4 address/.test(e.message),
  );
});

test("a request to a VIP goes to the service's endpoints under the service's name, port and body kept", async () => {
  const vips = vipTable({ payments: { vip: "240.240.0.2" } });
  const req = readdressVip(new Request("http://240.240.0.2:80/charge?x=1", { method: "POST", body: "amount=42", headers: { host: "240.240.0.2" } }), vips);
  assert.equal(req.url, "http://payments/charge?x=1");
  assert.equal(req.headers.get("host"), "payments");
  assert.equal(await req.text(), "amount=42");
  const other = new Request("http://192.0.2.77/charge");
  assert.equal(readdressVip(other, vips), other, "an address that is no VIP is left for the router to refuse");
  assert.equal(new URL(readdressVip(new Request("http://240.240.0.2:8080/"), vips).url).host, "payments:8080");
});

test("VIP and name share one destination: B1's failures through the VIP eject it for calls by name", async () => {
  const h = harness({ policies: [policy({ outlier: { consecutive5xx: 2 } })] });
  h.upstream.always(B1, "reset");
  const vips = vipTable({ payments: { vip: "240.240.0.2" } });
  for (let i = 0; i < 4; i++) {
    const res = await h.call(readdressVip(new Request("http://240.240.0.2/charge", { method: "POST", body: "{}" }), vips));
    assert.equal(res.status, 200);
  }
  assert.equal(h.eventsOf("eject").length, 1);
  assert.equal(h.eventsOf("eject")[0]!.destination, "payments");
  const before = h.upstream.callsTo(B1).length;
  assert.equal((await h.call("http://payments/charge")).status, 200);
  assert.equal(h.upstream.callsTo(B1).length, before, "the name's calls skip the endpoint ejected via the VIP");
  assert.ok(h.upstream.callsTo(B2).length >= 5);
  // Without the VIP table the address is no route at all.
  assert.equal((await h.call("http://240.240.0.2/charge")).status, 404);
});
