// The real ControlTransport: JSON over the runtime's own upstream, verifying the control
// plane's SVID (chain to the given root + its SPIFFE ID, never a host name), presenting the
// sidecar's SVID for mTLS calls and no certificate for the join-token enrollment.

import type { Clock } from "../../core/clock.ts";
import type { Runtime, TlsMaterial } from "../../runtime/types.ts";
import type { ControlTransport } from "../control-client.ts";
import { createPeerVerifier, mergeTrustBundles, trustBundleFromPem, type TrustBundle } from "../../core/identity/svid.ts";

export interface ControlTransportOptions {
  runtime: Runtime;
  /** https://host:port of the control plane. */
  url: URL;
  /** The mesh root(s) from --ca. */
  caPem: string;
  trustDomain: string;
  /** The SVID in use, once enrolled. */
  material: () => TlsMaterial | undefined;
  clock: Clock;
}

export function createControlTransport(o: ControlTransportOptions): { transport: ControlTransport; close(): void } {
  const endpoint = { address: o.url.host, identity: `spiffe://${o.trustDomain}/ns/remora-system/sa/control` };
  const root = trustBundleFromPem(o.caPem, o.trustDomain);
  let bundleFor: string | undefined;
  let bundle: TrustBundle = root;
  // The --ca root stays trusted beside whatever bundle the control plane handed out, so a
  // bundle carrying a new root during a rollover never locks the sidecar out.
  const currentBundle = () => {
    const pem = o.material()?.bundlePem;
    if (pem !== undefined && pem !== bundleFor) {
      bundleFor = pem;
      bundle = mergeTrustBundles(root, trustBundleFromPem(pem, o.trustDomain));
    }
    return bundle;
  };
  const verifyPeer = createPeerVerifier(currentBundle, o.clock, o.trustDomain);
  const bundlePem = () => o.caPem + "\n" + (o.material()?.bundlePem ?? "");
  const mutual = o.runtime.createUpstream({
    material: () => {
      const m = o.material();
      if (!m) throw new Error("no SVID yet: enroll with the join token first");
      return { ...m, bundlePem: bundlePem() };
    },
    verifyPeer,
  });
  const simple = o.runtime.createUpstream({ material: () => ({ certPem: "", keyPem: "", bundlePem: bundlePem() }), verifyPeer });

  const transport: ControlTransport = async (method, path, body, options) => {
    const headers = new Headers({ accept: "application/json" });
    if (body !== undefined) headers.set("content-type", "application/json");
    if (options.token !== undefined) headers.set("authorization", `Bearer ${options.token}`);
    const signals = [o.clock.timeout(options.timeoutMs ?? 30_000), ...(options.signal ? [options.signal] : [])];
    const signal = AbortSignal.any(signals);
    const req = new Request(new URL(path, o.url), { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal });
    const up = options.mtls ? mutual : simple;
    const res = await up.send(req, endpoint, { signal, tls: options.mtls ? "MUTUAL" : "SIMPLE" });
    const text = await res.text();
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = { error: `the control plane answered ${res.status} with a body that is not JSON` };
    }
    return { status: res.status, json };
  };
  return {
    transport,
    close() {
      mutual.close();
      simple.close();
    },
  };
}
