// One sidecar: the outbound listener (app -> mesh), the inbound listener (mesh -> app,
// mTLS terminated here) and the admin server, wired to the core pipeline. Settings can
// be swapped in place: policies and endpoints atomically, certificates without
// dropping a connection.

import type { Clock, Random } from "../core/clock.ts";
import type { EventSink, ResponseEvent } from "../core/events.ts";
import type { Policy } from "../core/policy/types.ts";
import type { Authorization } from "../core/authz.ts";
import type { Listener, ListenerLimits, MeshUpstream, Runtime, TlsMaterial } from "../runtime/types.ts";
import type { EndpointMap, InboundSettings, ListenerSettings } from "./config.ts";
import type { Logger } from "./logger.ts";
import { createOutbound, type Outbound } from "../core/pipeline.ts";
import { defaultPolicy } from "../core/policy/defaults.ts";
import { certificateInfo, createPeerVerifier, trustBundleFromPem, type TrustBundle } from "../core/identity/svid.ts";
import { Registry } from "../core/metrics/registry.ts";
import { registerProcessMetrics, type MemoryReader } from "../runtime/process-memory.ts";
import { createMeshMetrics, recordEvent, recordLimitEvent, type MeshMetrics } from "../core/metrics/mesh-metrics.ts";
import { nextHop } from "../core/trace/traceparent.ts";
import { destinationName, readdressVip, vipTable } from "../core/router.ts";
import { localReply } from "../core/pipeline/local-reply.ts";
import type { DestinationUpdate } from "./control/destinations.ts";
import { patchMesh } from "./control/mesh-view.ts";
import { RemoraError } from "../core/errors.ts";
import { rewriteRequest, setClientCertHeader } from "./headers.ts";
import { createInboundHandler } from "./inbound.ts";
import { countGrpcResponse } from "../core/metrics/grpc-metrics.ts";
import { createOutboundTunnels } from "./tunnels.ts";
import { createInboundStreams } from "./inbound-tunnel.ts";
import type { ProtocolSettings } from "./protocols.ts";
import type { Upstream } from "../core/upstream.ts";
import { upgradeToH2 } from "./orig-proto.ts";
import { lazyMeshTunnelDialer } from "../runtime/tunnel-dialer.ts";
import { createAdminHandler } from "./admin.ts";
import { createEventHub, type EventHub, type RequestRecord } from "./event-stream.ts";
import { createTracing, tracedHub, type TracingSettings } from "./tracing/tracing.ts";
import { createListenerRejections, createPeerLog } from "./limits-log.ts";
import { urlParts } from "../core/url-parts.ts";

export interface MeshSettings {
  policies: Policy[];
  endpoints: EndpointMap;
  /** Opaque version label shown on /config (file mtime, control-plane version). */
  version: string;
  /** Service name -> virtual IP, from the control plane: a request whose Host is a VIP routes to that service. */
  services?: Record<string, { vip: string }>;
}

export interface SidecarSettings {
  identity: TlsMaterial;
  trustDomain?: string;
  inbound?: InboundSettings;
  outbound: ListenerSettings;
  admin: ListenerSettings;
  mesh: MeshSettings;
  /** How long close() lets in-flight requests finish. */
  drainMs: number;
  /** Header, body, connection and slow-client limits on every listener (src/sidecar/limits.ts); absent: defaults. */
  limits?: Partial<ListenerLimits>;
  /** The service this sidecar fronts (whose authorization it enforces); default: the SVID's sa/<name>. */
  service?: string;
  /** Control-plane mode: not ready until the first applyMesh (static mode has its config at start). */
  awaitConfig?: boolean;
  /** How the config arrives, shown on admin /config; default "static", or "whole-mesh" with awaitConfig. */
  configMode?: "static" | "whole-mesh" | "on-demand";
  /** Spans per hop to an OTLP/HTTP collector (docs/tracing.md); absent: no spans exported. */
  tracing?: TracingSettings;
  /** Detection, opaque_ports / skip_ports, tunnel idle timeouts, TCP listeners (docs/protocols.md). */
  protocols?: ProtocolSettings;
}

export interface SidecarDeps {
  runtime: Runtime;
  clock: Clock;
  random: Random;
  log: Logger;
  /** Every outbound MeshEvent, for embedding programs and the demo's narration. */
  onEvent?: EventSink;
  /** Admin `POST /shutdown` asks for a drain; the host decides what that means (the CLI runs its SIGTERM path). */
  onShutdown?: () => void;
  /** On-demand config: called before routing a name; undefined to proceed, or the reason for a 503 (src/sidecar/control/subscriptions.ts). */
  discover?: (name: string, signal: AbortSignal) => Promise<string | undefined>;
  /** Process memory for admin /metrics (src/runtime/process-memory.ts); absent: not exposed. */
  memory?: MemoryReader;
}

export interface IdentityStatus {
  id: string;
  serial: string;
  notBefore: number;
  notAfter: number;
}

export interface Sidecar {
  readonly identity: () => IdentityStatus;
  readonly outbound: Listener;
  readonly inbound: Listener | undefined;
  readonly admin: Listener;
  readonly metrics: Registry;
  readonly pipeline: Outbound;
  readonly service: string;
  /** Live feed of this sidecar's events and finished requests (admin `GET /events`). */
  readonly events: EventHub;
  /** Ready once it has a certificate and a config (both at start in static mode). */
  readiness(): { ready: boolean; reason?: string };
  applyMesh(mesh: MeshSettings): void;
  /** On-demand config: replaces or drops only the named destinations (the rest keep their state). */
  applyDestinations(update: DestinationUpdate): void;
  /** Replaces every authorization document at once; only the one for `service` is enforced here. */
  applyAuthorization(docs: readonly Authorization[]): void;
  authorization(): readonly Authorization[];
  setIdentity(material: TlsMaterial): void;
  close(): Promise<void>;
}

export async function startSidecar(settings: SidecarSettings, deps: SidecarDeps): Promise<Sidecar> {
  const { runtime, clock, log } = deps;
  let material = settings.identity;
  let own = describeIdentity(material);
  const trustDomain = settings.trustDomain ?? new URL(own.id).host;
  let bundle: TrustBundle = trustBundleFromPem(material.bundlePem, trustDomain);
  const verifyPeer = createPeerVerifier(() => bundle, clock, trustDomain);

  const registry = new Registry();
  const metrics = createMeshMetrics(registry);
  if (deps.memory) registerProcessMetrics(registry, deps.memory);
  const peerLog = createPeerLog(log, clock);
  const rejections = createListenerRejections(registry, peerLog);
  const limits = settings.limits ?? {};
  metrics.certExpiry.set({ identity: own.id }, own.notAfter / 1000);

  let mesh = settings.mesh;
  let vips = vipTable(mesh.services);
  let configured = settings.awaitConfig !== true;
  const service = settings.service ?? serviceOf(own.id);
  let authorizations: readonly Authorization[] = [];
  let ownAuthorization: Authorization | undefined;
  /** Outbound requests in flight, each with its final `response` event once the pipeline reports it. */
  const requests = new Map<string, { final?: ResponseEvent }>();
  const tracing = settings.tracing ? createTracing(settings.tracing, { clock, log, service }) : undefined;
  const events = tracedHub(createEventHub({ service, now: () => clock.now() }), tracing);
  const onEvent: EventSink = (e) => {
    recordEvent(metrics, e);
    events.publish(e);
    // The last response event is the answer the request got (retries come before it).
    if (e.type === "response") {
      const r = requests.get(e.requestId);
      if (r !== undefined) r.final = e;
    }
    if (e.type === "eject") log.warn({ destination: e.destination, endpoint: e.endpoint, reason: e.reason, until: new Date(e.untilMs).toISOString(), ejections: e.ejectionCount }, "endpoint ejected");
    if (e.type === "uneject") log.info({ destination: e.destination, endpoint: e.endpoint }, "endpoint returned");
    deps.onEvent?.(e);
  };

  const meshUpstream: MeshUpstream = runtime.createUpstream({ material: () => material, verifyPeer });
  const appUpstream: MeshUpstream = runtime.createUpstream({ material: () => material, verifyPeer });
  const tracedSend = (send: Upstream) => (tracing ? tracing.wrapSend(send) : send);
  const pipeline = createOutbound(
    { policies: mesh.policies, endpoints: mesh.endpoints },
    {
      send: tracedSend(settings.protocols?.meshProtocol === "h2" ? upgradeToH2(meshUpstream.send) : meshUpstream.send),
      clock,
      random: deps.random,
      onEvent,
      // Counted, not logged per request: a storm must not become a log storm.
      onLimit: (e) => recordLimitEvent(metrics, e),
      defaultPolicy,
      requestId: () => crypto.randomUUID(),
    },
  );

  // Tunnels and opaque TCP go to peers over node:tls on every runtime (src/runtime/node/mesh-tunnel.ts), loaded by the first tunnel.
  const dialer = lazyMeshTunnelDialer({ material: () => material, verifyPeer });
  const tunnels = createOutboundTunnels({ runtime, pipeline, dialer, metrics, clock, log, protocols: settings.protocols ?? {}, limits, vips: () => vips, ...(deps.discover ? { discover: deps.discover } : {}) });

  const opened: Listener[] = [];
  try {
    const outbound = await runtime.serve({
      streams: { ...tunnels.streams, h2: true }, // h2c from apps: gRPC (docs/protocols.md)
      listen: settings.outbound.listen,
      limits,
      onRejected: rejections.forListener("outbound"),
      handler: async (req) => {
        const start = clock.now();
        const hop = nextHop(req.headers);
        const requestId = req.headers.get("x-request-id") ?? crypto.randomUUID();
        const seen: { final?: ResponseEvent } = {};
        requests.set(requestId, seen);
        const forwarded = rewriteRequest(readdressVip(req, vips), (h) => {
          h.set("x-request-id", requestId);
          h.set("traceparent", hop.traceparent);
          if (hop.tracestate) h.set("tracestate", hop.tracestate);
          else h.delete("tracestate");
        }, { inPlace: true }); // the pipeline copies it per attempt anyway
        try {
          const name = deps.discover ? destinationName(forwarded) : undefined;
          const refused = name === undefined ? undefined : await deps.discover!(name, req.signal);
          if (refused !== undefined) return localReply(503, refused);
          const res = await pipeline.handle(forwarded);
          return countGrpcResponse(metrics, "outbound", seen.final?.destination ?? "unknown", res);
        } finally {
          requests.delete(requestId);
          const final = seen.final;
          const url = urlParts(req.url);
          const record: RequestRecord = {
            type: "request",
            direction: "outbound",
            requestId,
            method: req.method,
            authority: url.host,
            path: url.pathname,
            status: final?.status,
            durationMs: clock.now() - start,
            attempts: final?.attempts ?? 0,
            traceId: hop.traceId,
            spanId: hop.spanId,
          };
          // Assigned, not spread from `cond ? {...} : {}`: no throwaway objects per request.
          if (final?.endpoint) record.upstream = final.endpoint;
          if (final?.peerIdentity) {
            record.peer = final.peerIdentity;
            record.mtls = true;
          }
          if (hop.parentSpanId) record.parentSpanId = hop.parentSpanId;
          events.publish(record);
          log.info(
            {
              direction: "outbound",
              method: record.method,
              authority: record.authority,
              path: record.path,
              status: record.status,
              duration_ms: record.durationMs,
              upstream: record.upstream,
              attempts: record.attempts,
              peer: record.peer,
              trace_id: hop.traceId,
              span_id: hop.spanId,
              parent_span_id: hop.parentSpanId,
              request_id: requestId,
            },
            "access",
          );
        }
      },
    });
    opened.push(outbound);

    let inbound: Listener | undefined;
    let admin!: Listener;
    if (settings.inbound) {
      const inb = settings.inbound;
      inbound = await runtime.serve({
        listen: inb.listen,
        streams: { h2: true, ...createInboundStreams({ app: inb.app, protocols: settings.protocols ?? {}, dialer, metrics, clock, log, ownId: () => own.id, authorization: () => ownAuthorization }) },
        limits,
        onRejected: rejections.forListener("inbound"),
        handler: createInboundHandler({ app: inb.app, mode: inb.mode, upstream: appUpstream, metrics, clock, log, ownId: () => own.id, authorization: () => ownAuthorization, onRequest: (r) => events.publish(r) }),
        tls: {
          material: () => material,
          verifyPeer,
          mode: inb.mode,
          onRefused: (reason, remote, kind = "handshake") => {
            metrics.inboundDenied.inc({ reason: kind });
            metrics.tlsHandshakes.inc({ direction: "inbound", result: "refused" });
            // Once per peer address and kind: a client retrying a bad certificate must not flood the log.
            peerLog.warn(remote, `tls:${kind}`, { kind, reason }, "inbound mTLS refused");
          },
        },
      });
      opened.push(inbound);
    }
    await tunnels.start();
    await tunnels.updateServices(mesh.services);

    const sidecar: Sidecar = {
      identity: () => own,
      outbound,
      inbound,
      get admin() {
        return admin;
      },
      metrics: registry,
      pipeline,
      service,
      events,
      readiness() {
        const now = clock.now();
        if (now >= own.notAfter) return { ready: false, reason: `certificate ${own.id} expired at ${new Date(own.notAfter).toISOString()}` };
        if (!configured) return { ready: false, reason: "waiting for the first config from the control plane" };
        return { ready: true };
      },
      applyAuthorization(docs) {
        authorizations = docs;
        ownAuthorization = docs.find((a) => a.destination === service);
      },
      authorization: () => authorizations,
      applyMesh(next) {
        pipeline.update({ policies: next.policies, endpoints: next.endpoints });
        mesh = next;
        vips = vipTable(next.services);
        void tunnels.updateServices(next.services);
        configured = true;
        log.info({ version: next.version, destinations: Object.keys(next.endpoints).length, policies: next.policies.length }, "config applied");
      },
      applyDestinations(update) {
        pipeline.patch({ set: update.set, remove: update.remove });
        mesh = patchMesh(mesh, update);
        vips = vipTable(mesh.services);
        void tunnels.updateServices(mesh.services);
        configured = true;
        log.info({ version: update.version, changed: Object.keys(update.set), removed: update.remove, destinations: Object.keys(mesh.endpoints).length }, "config applied");
      },
      setIdentity(next) {
        const info = describeIdentity(next);
        material = next;
        own = info;
        bundle = trustBundleFromPem(next.bundlePem, trustDomain);
        inbound?.reloadTls();
        meshUpstream.reloadTls();
        tunnels.reloadTls();
        metrics.certExpiry.set({ identity: info.id }, info.notAfter / 1000);
        log.info({ identity: info.id, serial: info.serial, not_after: new Date(info.notAfter).toISOString() }, "certificate loaded");
      },
      async close() {
        // Stop taking new work on every listener at once, then let in-flight requests finish.
        await Promise.all([...opened.map((l) => l.close(settings.drainMs)), tunnels.close(settings.drainMs)]);
        meshUpstream.close();
        appUpstream.close();
        await tracing?.close();
      },
    };

    admin = await runtime.serve({
      listen: settings.admin.listen,
      limits,
      onRejected: rejections.forListener("admin"),
      handler: createAdminHandler({
        sidecar,
        clock,
        settings: () => ({ ...settings, mesh }),
        ...(deps.onShutdown ? { shutdown: deps.onShutdown } : {}),
      }),
    });
    opened.push(admin);
    log.info({ identity: own.id, outbound: outbound.address, inbound: inbound?.address, admin: admin.address, runtime: `${runtime.name} ${runtime.version}` }, "sidecar ready");
    return sidecar;
  } catch (e) {
    await Promise.all([...opened.map((l) => l.close(0)), tunnels.close(0)]);
    meshUpstream.close();
    appUpstream.close();
    throw e;
  }
}

/** "payments" from spiffe://td/ns/default/sa/payments (remora's workload ID shape). */
function serviceOf(id: string): string {
  const m = /\/sa\/([^/]+)$/.exec(id);
  return m?.[1] ?? id;
}

function describeIdentity(m: TlsMaterial): IdentityStatus {
  const info = certificateInfo(m.certPem);
  if (!info.id) throw new RemoraError("ERR_SVID_INVALID", "the identity certificate has no spiffe:// URI SAN, so it is not an SVID");
  return { id: info.id, serial: info.serial, notBefore: info.notBefore, notAfter: info.notAfter };
}

export type { MeshMetrics };

