// Inbound requests are counted by transport, so an operator can see plaintext still
// arriving before switching a PERMISSIVE service to STRICT.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createInboundHandler } from "../../src/sidecar/inbound.ts";
import { Registry } from "../../src/core/metrics/registry.ts";
import { createMeshMetrics } from "../../src/core/metrics/mesh-metrics.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { silentLogger } from "../../src/sidecar/logger.ts";

test("remora_inbound_tls_requests_total counts mTLS and plaintext requests apart, and plaintext is served", async () => {
  const registry = new Registry();
  const forwarded: (string | null)[] = [];
  const handler = createInboundHandler({
    app: "192.0.2.1:8080",
    mode: "PERMISSIVE",
    upstream: { send: async (req) => (forwarded.push(req.headers.get("x-forwarded-client-cert")), new Response("ok")), reloadTls() {}, close() {} },
    metrics: createMeshMetrics(registry),
    clock: new FakeClock(),
    log: silentLogger,
    ownId: () => "spiffe://cluster.local/ns/default/sa/payments",
  });
  const orders = "spiffe://cluster.local/ns/default/sa/orders";
  assert.equal((await handler(new Request("http://payments/charge", { method: "POST" }), { remoteAddress: "192.0.2.9", remotePort: 40000, remote: "192.0.2.9:40000", mtls: false })).status, 200);
  assert.equal((await handler(new Request("http://payments/charge", { method: "POST" }), { remoteAddress: "192.0.2.9", remotePort: 40001, remote: "192.0.2.9:40001", mtls: false })).status, 200);
  assert.equal((await handler(new Request("http://payments/charge"), { remoteAddress: "192.0.2.8", remotePort: 40002, remote: "192.0.2.8:40002", mtls: true, peerIdentity: orders })).status, 200);
  const text = registry.expose();
  assert.match(text, /^remora_inbound_tls_requests_total\{tls="plaintext"\} 2$/m);
  assert.match(text, /^remora_inbound_tls_requests_total\{tls="mtls"\} 1$/m);
  // A plaintext caller is anonymous to the app: no identity is vouched for.
  assert.deepEqual(forwarded, [null, null, `By=spiffe://cluster.local/ns/default/sa/payments;URI=${orders}`]);
});
