// Service virtual IPs: assigned from --service-cidr when a service first appears, stable
// across restarts, shown by GET /v1/services and sent to sidecars in the snapshot.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane } from "../../src/control/control-plane.ts";
import { FileStore } from "../../src/control/file-store.ts";
import { MemoryStore } from "../../src/control/store.ts";
import { parseServiceCidr } from "../../src/control/services.ts";
import { parseApplyBody } from "../../src/control/documents.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { isRemoraError } from "../../src/core/errors.ts";
import { ADMIN, id, setup, T0 } from "./support.ts";

const policy = (dest: string) => parseApplyBody(`route:\n  destination: ${dest}\n`);
const proxy = (p: string, service: string, address?: string) => ({ proxy: p, service, namespace: "shop", identity: id("shop", service), ...(address ? { address } : {}) });

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "remora-services-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("service VIPs", () => {
  test("a policy's destination and a registered proxy's service each get the next free address, once", async () => {
    const plane = await ControlPlane.open({ store: new MemoryStore(), clock: new FakeClock(T0) });
    await plane.applyDocuments(policy("payments"));
    await plane.heartbeat(proxy("orders-1", "orders"));
    await plane.heartbeat(proxy("payments-1", "payments", "192.0.2.11:15006"));
    await plane.heartbeat(proxy("payments-2", "payments", "192.0.2.12:15006"));
    await plane.applyDocuments(policy("payments"));
    assert.deepEqual(plane.services(), [
      { service: "orders", namespace: "shop", vip: "240.240.0.2", endpoints: 0 },
      { service: "payments", namespace: "default", vip: "240.240.0.1", endpoints: 2 },
    ]);
    assert.deepEqual(plane.snapshot().services, { orders: { vip: "240.240.0.2" }, payments: { vip: "240.240.0.1" } });
    // Deleting the policy keeps the address: an app's hosts file may still name it.
    await plane.deletePolicy("payments");
    assert.equal(plane.services().find((s) => s.service === "payments")?.vip, "240.240.0.1");
  });

  test("VIPs survive a restart on the same store, and a new service never takes a held address", async () => {
    await withDir(async (dir) => {
      const first = await ControlPlane.open({ store: new FileStore(dir), clock: new FakeClock(T0) });
      await first.applyDocuments(parseApplyBody("route:\n  destination: a\n---\nroute:\n  destination: b\n"));
      const again = await ControlPlane.open({ store: new FileStore(dir), clock: new FakeClock(T0) });
      assert.deepEqual(again.snapshot().services, { a: { vip: "240.240.0.1" }, b: { vip: "240.240.0.2" } });
      // Restarted with another range: the held VIPs stay, new ones come from the new range.
      const moved = await ControlPlane.open({ store: new FileStore(dir), clock: new FakeClock(T0), serviceCidr: "10.96.0.0/24" });
      await moved.applyDocuments(policy("c"));
      assert.deepEqual(moved.snapshot().services, { a: { vip: "240.240.0.1" }, b: { vip: "240.240.0.2" }, c: { vip: "10.96.0.1" } });
    });
  });

  test("state saved before VIPs existed gets them when the control plane opens it", async () => {
    await withDir(async (dir) => {
      const old = { version: 7, policies: { payments: { route: { destination: "payments" } } }, authorization: {}, proxies: { "orders-1": proxy("orders-1", "orders") } };
      await writeFile(join(dir, "state.json"), JSON.stringify(old));
      const plane = await ControlPlane.open({ store: new FileStore(dir), clock: new FakeClock(T0) });
      assert.deepEqual(plane.snapshot().services, { payments: { vip: "240.240.0.1" }, orders: { vip: "240.240.0.2" } });
      assert.equal(plane.version, "8");
    });
  });

  test("a full range refuses the new service naming --service-cidr, and changes nothing", async () => {
    const plane = await ControlPlane.open({ store: new MemoryStore(), clock: new FakeClock(T0), serviceCidr: "192.0.2.0/30" });
    await plane.applyDocuments(parseApplyBody("route:\n  destination: a\n---\nroute:\n  destination: b\n"));
    assert.deepEqual(plane.snapshot().services, { a: { vip: "192.0.2.1" }, b: { vip: "192.0.2.2" } });
    await assert.rejects(plane.applyDocuments(policy("c")), (e: unknown) => isRemoraError(e, "ERR_VIP") && /^--service-cidr 192\.0\.2\.0\/30 has no free address left for service "c"/.test(e.message));
    assert.deepEqual(plane.policies().policies.length, 2);
  });

  test("--service-cidr must be an IPv4 network between /8 and /30", () => {
    assert.deepEqual(parseServiceCidr("240.240.0.0/16"), { text: "240.240.0.0/16", network: 0xf0f00000, size: 65536 });
    for (const [text, message] of [
      ["240.240.0.0", /is not an IPv4 CIDR between \/8 and \/30/],
      ["240.240.0.0/31", /is not an IPv4 CIDR/],
      ["fd00::/64", /is not an IPv4 CIDR/],
      ["240.240.1.0/16", /has host bits set; did you mean 240\.240\.0\.0\/16\?/],
    ] as const) {
      assert.throws(() => parseServiceCidr(text), (e: unknown) => isRemoraError(e, "ERR_VIP") && e.message.startsWith(`--service-cidr "${text}"`) && message.test(e.message), text);
    }
  });
});

describe("GET /v1/services", () => {
  test("admin only; one entry per service with its VIP and endpoint count", async () => {
    const ctx = await setup();
    assert.equal((await ctx.call("GET", "/v1/services")).status, 401);
    assert.equal((await ctx.call("GET", "/v1/services", { peer: id("default", "payments") })).status, 401);
    await ctx.admin("PUT", "/v1/policies", { text: "route:\n  destination: payments\n" });
    const reg = await ctx.call("PUT", "/v1/proxies/payments-1", { peer: id("default", "payments"), body: { service: "payments", address: "192.0.2.11:15006" } });
    assert.equal(reg.status, 200);
    const res = await ctx.call("GET", "/v1/services", { token: ADMIN });
    assert.equal(res.status, 200);
    const list = (await res.json()) as unknown[];
    assert.deepEqual(list, [{ service: "payments", namespace: "default", vip: "240.240.0.1", endpoints: 1 }]);
  });

  test("the config snapshot a sidecar fetches carries services with their VIPs", async () => {
    const ctx = await setup();
    await ctx.admin("PUT", "/v1/policies", { text: "route:\n  destination: payments\n" });
    const snap = (await (await ctx.call("GET", "/v1/config", { peer: id("default", "orders") })).json()) as { services: unknown };
    assert.deepEqual(snap.services, { payments: { vip: "240.240.0.1" } });
  });
});
