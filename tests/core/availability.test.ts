import { test } from "node:test";
import assert from "node:assert/strict";
import { availabilityOf } from "../../src/core/pipeline/availability.ts";
import type { Destination } from "../../src/core/pipeline/destination.ts";

/** Only what availabilityOf reads: the endpoints' addresses and ejection flags. */
function destination(...endpoints: [string, boolean][]): { d: Destination; eject(i: number, ejected: boolean): void; rename(i: number, address: string): void } {
  const states = endpoints.map(([address, ejected]) => ({ address, health: { ejected } }));
  return {
    d: { name: "payments", endpoints: states } as unknown as Destination,
    eject: (i, ejected) => void (states[i]!.health.ejected = ejected),
    rename: (i, address) => void (states[i]!.address = address),
  };
}

test("the resolve event's endpoints are made once per destination while nothing changes", () => {
  const { d } = destination(["192.0.2.1:15006", false], ["192.0.2.2:15006", false]);
  const first = availabilityOf(d);
  assert.deepEqual(first, [{ address: "192.0.2.1:15006", available: true }, { address: "192.0.2.2:15006", available: true }]);
  assert.equal(availabilityOf(d), first);
});

test("an ejection or a return makes a new list, and one already handed out never changes", () => {
  const { d, eject } = destination(["192.0.2.1:15006", false], ["192.0.2.2:15006", false]);
  const before = availabilityOf(d);
  eject(0, true);
  const during = availabilityOf(d);
  assert.notEqual(during, before);
  assert.deepEqual(during.map((e) => e.available), [false, true]);
  assert.deepEqual(before.map((e) => e.available), [true, true]);
  assert.throws(() => ((before as unknown as { available: boolean }[])[0]!.available = false), TypeError);
  eject(0, false);
  assert.deepEqual(availabilityOf(d).map((e) => e.available), [true, true]);
});

test("destinations are kept apart, and a list of other addresses is remade", () => {
  const a = destination(["192.0.2.1:15006", false]);
  const b = destination(["192.0.2.9:15006", true]);
  assert.deepEqual(availabilityOf(a.d), [{ address: "192.0.2.1:15006", available: true }]);
  assert.deepEqual(availabilityOf(b.d), [{ address: "192.0.2.9:15006", available: false }]);
  a.rename(0, "192.0.2.3:15006");
  assert.deepEqual(availabilityOf(a.d), [{ address: "192.0.2.3:15006", available: true }]);
});
