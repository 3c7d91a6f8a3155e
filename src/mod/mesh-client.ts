// The proxyless client at the heart of an embedded mesh: the sidecar's outbound pipeline
// (naming, balancing, retries, outlier ejection, mTLS to the peer's inbound sidecar) behind
// a fetch, with its own metrics registry. No listener is opened.

import type { Clock, Random } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";
import type { Policy } from "../core/policy/types.ts";
import type { Endpoint } from "../core/endpoint.ts";
import { createOutbound, type DestinationStatus } from "../core/pipeline.ts";
import { defaultPolicy } from "../core/policy/defaults.ts";
import { certificateInfo, createPeerVerifier, trustBundleFromPem, type TrustBundle } from "../core/identity/svid.ts";
import { Registry } from "../core/metrics/registry.ts";
import { createMeshMetrics, recordEvent, recordLimitEvent } from "../core/metrics/mesh-metrics.ts";
import { nextHop } from "../core/trace/traceparent.ts";
import { destinationName, readdressVip, vipTable } from "../core/router.ts";
import { localReply } from "../core/pipeline/local-reply.ts";
import type { DestinationUpdate } from "../sidecar/control/destinations.ts";
import { RemoraError } from "../core/errors.ts";
import type { Runtime, TlsMaterial } from "../runtime/types.ts";
import { rewriteRequest } from "../sidecar/headers.ts";

export interface MeshView {
  policies: readonly Policy[];
  endpoints: Readonly<Record<string, readonly Endpoint[]>>;
  /** Virtual IPs the control plane assigned, so `http://240.240.0.2/` reaches its service too. */
  services?: Readonly<Record<string, { vip: string }>>;
}

export interface MeshClientDeps {
  runtime: Runtime;
  clock: Clock;
  random: Random;
  trustDomain?: string;
  onEvent?: EventSink;
  /** On-demand config: before routing a name, undefined to proceed or the reason for a 503 (src/sidecar/control/subscriptions.ts). */
  discover?: (name: string, signal: AbortSignal) => Promise<string | undefined>;
}

export interface MeshClient {
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  metrics(): string;
  destinations(): DestinationStatus[];
  /** This program's SPIFFE ID. */
  identity(): string;
  update(view: MeshView): void;
  /** On-demand config: replaces or drops only the named destinations. */
  patch(update: DestinationUpdate): void;
  setIdentity(material: TlsMaterial): void;
  close(): void;
}

export function createMeshClient(material: TlsMaterial, view: MeshView, deps: MeshClientDeps): MeshClient {
  let current = material;
  let id = spiffeIdOf(material);
  const trustDomain = deps.trustDomain ?? new URL(id).host;
  let bundle: TrustBundle = trustBundleFromPem(material.bundlePem, trustDomain);
  const verifyPeer = createPeerVerifier(() => bundle, deps.clock, trustDomain);
  const registry = new Registry();
  const metrics = createMeshMetrics(registry);
  metrics.certExpiry.set({ identity: id }, certificateInfo(material.certPem).notAfter / 1000);
  let services: Record<string, { vip: string }> = { ...view.services };
  let vips = vipTable(services);

  const upstream = deps.runtime.createUpstream({ material: () => current, verifyPeer });
  const pipeline = createOutbound(
    { policies: view.policies, endpoints: view.endpoints },
    {
      send: upstream.send,
      clock: deps.clock,
      random: deps.random,
      onEvent: (e) => {
        recordEvent(metrics, e);
        deps.onEvent?.(e);
      },
      onLimit: (e) => recordLimitEvent(metrics, e),
      defaultPolicy,
      requestId: () => crypto.randomUUID(),
    },
  );

  return {
    async fetch(input, init) {
      const req = readdressVip(new Request(input, init), vips);
      // The same headers a sidecar's outbound adds: a request id and the next W3C trace hop.
      const hop = nextHop(req.headers);
      const forwarded = rewriteRequest(req, (h) => {
        if (!h.has("x-request-id")) h.set("x-request-id", crypto.randomUUID());
        h.set("traceparent", hop.traceparent);
        if (hop.tracestate) h.set("tracestate", hop.tracestate);
        else h.delete("tracestate");
      });
      const name = deps.discover ? destinationName(forwarded) : undefined;
      const refused = name === undefined ? undefined : await deps.discover!(name, forwarded.signal);
      if (refused !== undefined) return localReply(503, refused);
      return pipeline.handle(forwarded);
    },
    metrics: () => registry.expose(),
    destinations: () => pipeline.destinations(),
    identity: () => id,
    update(next) {
      pipeline.update({ policies: next.policies, endpoints: next.endpoints });
      services = { ...next.services };
      vips = vipTable(services);
    },
    patch(update) {
      pipeline.patch({ set: update.set, remove: update.remove });
      for (const name of [...update.remove, ...Object.keys(update.set)]) delete services[name];
      for (const [name, d] of Object.entries(update.set)) if (d.vip !== undefined) services[name] = { vip: d.vip };
      vips = vipTable(services);
    },
    setIdentity(next) {
      const nextId = spiffeIdOf(next);
      current = next;
      id = nextId;
      bundle = trustBundleFromPem(next.bundlePem, trustDomain);
      upstream.reloadTls();
      metrics.certExpiry.set({ identity: nextId }, certificateInfo(next.certPem).notAfter / 1000);
    },
    close() {
      upstream.close();
    },
  };
}

function spiffeIdOf(material: TlsMaterial): string {
  const id = certificateInfo(material.certPem).id;
  if (!id) throw new RemoraError("ERR_SVID_INVALID", "the mesh identity certificate has no spiffe:// URI SAN, so it is not an SVID; use one from `remora certs` or the control plane.");
  return id;
}
