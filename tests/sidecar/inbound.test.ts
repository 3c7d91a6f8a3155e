import { test } from "node:test";
import assert from "node:assert/strict";
import { createInboundHandler } from "../../src/sidecar/inbound.ts";
import { parseAuthorization, type Authorization } from "../../src/core/authz.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import { createMeshMetrics } from "../../src/core/metrics/mesh-metrics.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { silentLogger } from "../../src/sidecar/logger.ts";

const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";
const SHOP = "spiffe://cluster.local/ns/default/sa/shop";

function setup(auth: Authorization | undefined) {
  const registry = new Registry();
  const seen: string[] = [];
  const handler = createInboundHandler({
    app: "192.0.2.1:8080",
    mode: "STRICT",
    upstream: { send: async (req) => (seen.push(`${req.method} ${new URL(req.url).pathname}`), new Response("ok")), reloadTls() {}, close() {} },
    metrics: createMeshMetrics(registry),
    clock: new FakeClock(),
    log: silentLogger,
    ownId: () => "spiffe://cluster.local/ns/default/sa/payments",
    authorization: () => auth,
  });
  const call = (peer: string, method: string, path: string) =>
    handler(new Request(`http://payments${path}`, { method }), { remoteAddress: "192.0.2.9", remotePort: 40000, remote: "192.0.2.9:40000", mtls: true, peerIdentity: peer });
  return { registry, seen, call };
}

test("a denied caller gets 403 naming it, is counted, and the app never sees the request", async () => {
  const auth = parseAuthorization({ authorization: { destination: "payments", allow: [{ from: [ORDERS], methods: ["POST"], paths: ["/charge"] }] } });
  const { registry, seen, call } = setup(auth);
  const res = await call(SHOP, "POST", "/charge");
  assert.equal(res.status, 403);
  assert.equal(await res.text(), `remora: ${SHOP} is not allowed to POST /charge on payments\n`);
  assert.deepEqual(seen, []);
  assert.match(registry.expose(), /remora_inbound_denied_total\{reason="authz"\} 1/);
  const ok = await call(ORDERS, "POST", "/charge");
  assert.equal(ok.status, 200);
  assert.deepEqual(seen, ["POST /charge"]);
});

test("without an authorization document every authenticated caller reaches the app", async () => {
  const { seen, call } = setup(undefined);
  assert.equal((await call(SHOP, "DELETE", "/x")).status, 200);
  assert.deepEqual(seen, ["DELETE /x"]);
});
