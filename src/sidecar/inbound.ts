// The inbound side of a sidecar: requests arriving from other sidecars (mTLS already
// terminated and the caller verified by the listener) are forwarded over loopback to the
// local app, with the caller's identity attached for the app, once authorization policy
// for this service allows the caller (a denied request never reaches the app).

import type { Clock } from "../core/clock.ts";
import type { Authorization } from "../core/authz.ts";
import { codeClass, type MeshMetrics } from "../core/metrics/mesh-metrics.ts";
import type { ConnInfo, Handler, InboundMode, MeshUpstream } from "../runtime/types.ts";
import type { Logger } from "./logger.ts";
import { UpstreamError } from "../core/upstream.ts";
import { authorize } from "../core/authz.ts";
import { countGrpcResponse } from "../core/metrics/grpc-metrics.ts";
import { nextHop } from "../core/trace/traceparent.ts";
import { urlParts } from "../core/url-parts.ts";
import { rewriteRequest, setClientCertHeader } from "./headers.ts";
import { downgradeForApp } from "./orig-proto.ts";
import type { RequestRecord } from "./event-stream.ts";

export interface InboundDeps {
  app: string;
  mode: InboundMode;
  upstream: MeshUpstream;
  metrics: MeshMetrics;
  clock: Clock;
  log: Logger;
  ownId: () => string;
  /** This service's authorization document, if the control plane sent one; read per request. */
  authorization?: () => Authorization | undefined;
  /** Each finished request (the admin event feed). */
  onRequest?: (r: RequestRecord) => void;
}

export function createInboundHandler(d: InboundDeps): Handler {
  const endpoint = { address: d.app };
  return async (req, info) => {
    const start = d.clock.now();
    const url = urlParts(req.url);
    const caller = info.mtls ? info.peerIdentity : undefined;
    d.metrics.inboundTls.inc({ tls: info.mtls ? "mtls" : "plaintext" });
    const verdict = authorize(d.authorization?.(), caller ? { identity: caller, method: req.method, path: url.pathname } : { method: req.method, path: url.pathname });
    if (!verdict.allowed) {
      d.metrics.inboundDenied.inc({ reason: "authz" });
      d.log.warn({ direction: "inbound", method: req.method, path: url.pathname, peer: caller, remote: info.remote, reason: verdict.reason }, "request denied by authorization policy");
      return new Response(`remora: ${verdict.reason}\n`, { status: 403, headers: { "content-type": "text/plain; charset=utf-8" } });
    }
    const hop = nextHop(req.headers);
    const forwarded = rewriteRequest(req, (h) => {
      setClientCertHeader(h, d.ownId(), info.mtls ? info.peerIdentity : undefined);
      downgradeForApp(h);
      h.set("traceparent", hop.traceparent);
      if (hop.tracestate) h.set("tracestate", hop.tracestate);
      else h.delete("tracestate");
    }, { inPlace: true }); // the listener's own Request, sent once: a copy would be pure cost
    let res: Response;
    let failure: string | undefined;
    try {
      res = await d.upstream.send(forwarded, endpoint, { signal: req.signal, tls: "DISABLE" });
    } catch (e) {
      if (!(e instanceof UpstreamError)) throw e;
      failure = e.kind;
      // Envoy's answer when the local app fails before a response head: 503, with the
      // reason in a header so the caller's sidecar and an operator can tell why.
      res = new Response(`remora: local app ${d.app} failed: ${e.kind}\n`, {
        status: 503,
        headers: { "content-type": "text/plain; charset=utf-8", "x-remora-upstream-failure": e.kind },
      });
    }
    const seconds = (d.clock.now() - start) / 1000;
    if (d.onRequest) {
      const record: RequestRecord = {
        type: "request",
        direction: "inbound",
        requestId: req.headers.get("x-request-id") ?? "",
        method: req.method,
        authority: url.host,
        path: url.pathname,
        status: res.status,
        durationMs: seconds * 1000,
        upstream: d.app,
        mtls: info.mtls,
        traceId: hop.traceId,
        spanId: hop.spanId,
      };
      if (caller) record.peer = caller;
      if (hop.parentSpanId) record.parentSpanId = hop.parentSpanId;
      d.onRequest(record);
    }
    d.metrics.requests.inc({ direction: "inbound", destination: "app", code_class: codeClass(res.status) });
    countGrpcResponse(d.metrics, "inbound", "app", res);
    d.metrics.duration.observe({ direction: "inbound", destination: "app" }, seconds);
    d.log.info(
      {
        direction: "inbound",
        method: req.method,
        authority: url.host,
        path: url.pathname,
        status: res.status,
        duration_ms: seconds * 1000,
        upstream: d.app,
        peer: info.peerIdentity,
        mtls: info.mtls,
        remote: info.remote,
        failure,
        trace_id: hop.traceId,
        span_id: hop.spanId,
        parent_span_id: hop.parentSpanId,
      },
      "access",
    );
    return res;
  };
}
