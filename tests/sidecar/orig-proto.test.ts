import { test } from "node:test";
import assert from "node:assert/strict";
import type { Upstream, UpstreamOptions } from "../../src/core/upstream.ts";
import { downgradeForApp, ORIG_PROTO_HEADER, upgradeToH2 } from "../../src/sidecar/orig-proto.ts";

const endpoint = { address: "192.0.2.1:15006" };
const opts = (tls: UpstreamOptions["tls"]): UpstreamOptions => ({ signal: new AbortController().signal, tls });

function recorder() {
  const sent: Request[] = [];
  const send: Upstream = async (req) => (sent.push(req), new Response("ok"));
  return { sent, send: upgradeToH2(send) };
}

test("an HTTP/1.1 request to an mTLS peer goes as h2, marked with its original protocol, body intact", async () => {
  const { sent, send } = recorder();
  await send(new Request("http://payments/charge", { method: "POST", body: "card=1", headers: { "x-a": "1" } }), endpoint, opts("MUTUAL"));
  assert.equal(sent[0]!.headers.get("remora-proto"), "h2");
  assert.equal(sent[0]!.headers.get(ORIG_PROTO_HEADER), "HTTP/1.1");
  assert.equal(sent[0]!.headers.get("x-a"), "1");
  assert.equal(await sent[0]!.text(), "card=1");
});

test("plaintext hops stay HTTP/1.1, and an h2 call loses a mark its app wrote", async () => {
  const { sent, send } = recorder();
  await send(new Request("http://payments/"), endpoint, opts("DISABLE"));
  assert.equal(sent[0]!.headers.get("remora-proto"), null);
  await send(new Request("http://payments/", { headers: { "remora-proto": "h2", [ORIG_PROTO_HEADER]: "HTTP/1.1" } }), endpoint, opts("MUTUAL"));
  assert.equal(sent[1]!.headers.get("remora-proto"), "h2");
  assert.equal(sent[1]!.headers.get(ORIG_PROTO_HEADER), null, "the peer must not downgrade a real h2 call");
});

test("the inbound drops both marks only for a request that was HTTP/1.1 at the caller", () => {
  const upgraded = new Headers({ "remora-proto": "h2", [ORIG_PROTO_HEADER]: "HTTP/1.1" });
  downgradeForApp(upgraded);
  assert.deepEqual([...upgraded.keys()], []);
  const grpc = new Headers({ "remora-proto": "h2" });
  downgradeForApp(grpc);
  assert.equal(grpc.get("remora-proto"), "h2");
});
