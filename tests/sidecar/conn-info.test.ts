import { test } from "node:test";
import assert from "node:assert/strict";
import { connInfo } from "../../src/runtime/conn-info.ts";

test("connInfo names the caller as logs do: IPv6 in brackets, the verified identity only under mTLS", () => {
  assert.deepEqual(connInfo({ remoteAddress: "192.0.2.9", remotePort: 40000 }), { remoteAddress: "192.0.2.9", remotePort: 40000, remote: "192.0.2.9:40000", mtls: false });
  assert.deepEqual(connInfo({ remoteAddress: "2001:db8::1", remotePort: 443 }, "spiffe://cluster.local/ns/default/sa/orders"), {
    remoteAddress: "2001:db8::1",
    remotePort: 443,
    remote: "[2001:db8::1]:443",
    mtls: true,
    peerIdentity: "spiffe://cluster.local/ns/default/sa/orders",
  });
  // A socket already closed has no address: the caller is still named, not "undefined:undefined".
  assert.equal(connInfo({}).remote, ":0");
});
