// remora's Bun runtime layer alone: its HTTP/1.1 listener (Request in, Response out) and
// its pooled mTLS upstream, with a handler that only forwards; no pipeline, no policy,
// metrics, logs or trace headers. Between the relay floor and a full sidecar: what the
// HTTP adapter costs, apart from what the mesh does per request. Run by bench/layers.ts.
//
//   bun bench/layers/runtime-only.ts client|server LISTEN_HOST:PORT TARGET_HOST:PORT CERT_DIR

import { bunRuntime } from "../../src/runtime/bun.ts";
import { createPeerVerifier, trustBundleFromPem } from "../../src/core/identity/svid.ts";
import { readFile } from "node:fs/promises";

const [role, listen, target, certs] = process.argv.slice(2);
if (!role || !listen || !target || !certs) throw new Error("usage: bun bench/layers/runtime-only.ts client|server LISTEN TARGET CERT_DIR");
const service = role === "client" ? "orders" : "payments";
const read = (f: string) => readFile(`${certs}/${f}`, "utf8");
const material = { certPem: await read(`${service}.pem`), keyPem: await read(`${service}-key.pem`), bundlePem: await read("root.pem") };
const bundle = trustBundleFromPem(material.bundlePem, "cluster.local");
const verifyPeer = createPeerVerifier(() => bundle, { now: () => Date.now() }, "cluster.local");
const upstream = bunRuntime.createUpstream({ material: () => material, verifyPeer });
const endpoint = role === "client" ? { address: target, identity: "spiffe://cluster.local/ns/default/sa/payments" } : { address: target };
const tls = role === "client" ? "MUTUAL" : "DISABLE";

await bunRuntime.serve({
  listen,
  handler: (req) => upstream.send(req, endpoint, { signal: req.signal, tls }),
  ...(role === "server" ? { tls: { material: () => material, verifyPeer, mode: "STRICT" } } : {}),
});
console.log(JSON.stringify({ msg: "ready", role }));
