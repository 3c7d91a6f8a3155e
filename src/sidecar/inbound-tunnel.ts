// The inbound side of tunnels (docs/protocols.md): a peer sidecar's CONNECT or WebSocket
// Upgrade, arrived over mTLS with its caller verified, is authorized like a request and
// joined to this pod's LOCAL app only. CONNECT may name loopback and the app's ports alone:
// anything else is refused 403 with the reason, so a sidecar is never an open relay.

import type { Authorization } from "../core/authz.ts";
import { authorize } from "../core/authz.ts";
import type { Clock } from "../core/clock.ts";
import type { MeshMetrics } from "../core/metrics/mesh-metrics.ts";
import { closingResponse, requestHead, responseHead } from "../core/protocol/http1-head.ts";
import { UpstreamError } from "../core/upstream.ts";
import type { ConnInfo, Duplex, StreamHandlers, TunnelRequest } from "../runtime/types.ts";
import type { MeshTunnelDialer } from "../runtime/tunnel-dialer.ts";
import { setClientCertHeader } from "./headers.ts";
import type { Logger } from "./logger.ts";
import { pipeBoth } from "./pipe.ts";
import { DEFAULT_TCP_IDLE_MS, DEFAULT_WEBSOCKET_IDLE_MS, type ProtocolSettings } from "./protocols.ts";
import { answer } from "./tunnels.ts";
import { trackTunnel, type TunnelTracker } from "./tunnel-log.ts";

export interface InboundTunnelDeps {
  /** host:port of the local app (inbound.app). */
  app: string;
  protocols: ProtocolSettings;
  /** Plain TCP to the local app (mode DISABLE of the mesh dialer). */
  dialer: MeshTunnelDialer;
  metrics: MeshMetrics;
  clock: Clock;
  log: Logger;
  ownId: () => string;
  authorization?: () => Authorization | undefined;
}

const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);
const HOP_BY_HOP = ["keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding"];
const EMPTY = new Uint8Array(0);

export function createInboundStreams(d: InboundTunnelDeps): StreamHandlers {
  const colon = d.app.lastIndexOf(":");
  const appHost = d.app.slice(0, colon);
  const appPort = Number(d.app.slice(colon + 1));
  const allowed = [appPort, ...(d.protocols.inboundTcpPorts ?? [])];
  const tcpIdleMs = d.protocols.tcpIdleTimeoutMs ?? DEFAULT_TCP_IDLE_MS;
  const wsIdleMs = d.protocols.websocketIdleTimeoutMs ?? DEFAULT_WEBSOCKET_IDLE_MS;

  /** Joins `socket` to the local app at `address`, after `first` (a head) is written to the app. */
  async function join(socket: Duplex, address: string, first: Uint8Array[], established: Uint8Array | undefined, idleMs: number, track: TunnelTracker, http = true): Promise<void> {
    let app;
    try {
      app = await d.dialer.open({ address }, { mode: "DISABLE", head: EMPTY, expect: "raw" });
    } catch (e) {
      const kind = e instanceof UpstreamError ? e.kind : "connect-failure";
      track.failed(kind.replace("-", "_"), `local app ${address} failed: ${kind}`);
      // Envoy's answer when the local app fails before a response head (as inbound.ts): the
      // caller's sidecar takes 503 for a connect failure of this endpoint.
      if (http) answer(socket, closingResponse(503, "Service Unavailable", `remora: local app ${address} failed: ${kind}\n`));
      else socket.destroy();
      return;
    }
    track.opened({ upstream: address });
    if (established) socket.write(established);
    for (const chunk of first) if (chunk.length > 0) app.socket.write(chunk);
    track.closed(await pipeBoth(socket, app.socket, { clock: d.clock, idleMs, onBytes: track.bytes }));
  }

  function refuse(t: TunnelRequest, track: TunnelTracker, result: string, reason: string, metricReason: string): void {
    d.metrics.inboundDenied.inc({ reason: metricReason });
    track.failed(result, reason);
    d.log.warn({ direction: "inbound", peer: t.info.peerIdentity, remote: t.info.remote, reason }, "tunnel refused");
    answer(t.socket, closingResponse(403, "Forbidden", `remora: ${reason}\n`));
  }

  return {
    ...(d.protocols.detectTimeoutMs !== undefined ? { detectTimeoutMs: d.protocols.detectTimeoutMs } : {}),
    tunnel(t) {
      t.socket.on("error", () => {});
      const url = new URL(t.request.url);
      const caller = t.info.mtls ? t.info.peerIdentity : undefined;
      const connect = t.kind === "connect";
      const track = trackTunnel(d.metrics, d.log, d.clock, {
        direction: "inbound",
        kind: connect ? "connect" : "websocket",
        destination: "app",
        remote: t.info.remote,
        ...(caller ? { peer: caller } : {}),
      });
      d.metrics.inboundTls.inc({ tls: t.info.mtls ? "mtls" : "plaintext" });
      const verdict = authorize(d.authorization?.(), { ...(caller ? { identity: caller } : {}), method: connect ? "CONNECT" : t.request.method, path: connect ? "/" : url.pathname });
      if (!verdict.allowed) return refuse(t, track, "denied", verdict.reason ?? "denied by authorization policy", "authz");

      if (connect) {
        const port = Number(url.port || 443);
        if (!LOOPBACK_NAMES.has(url.hostname)) {
          return refuse(t, track, "refused", `CONNECT to ${url.host} is refused: this sidecar connects to its local app only (CONNECT 127.0.0.1:<port>)`, "connect_target");
        }
        if (!allowed.includes(port)) {
          return refuse(t, track, "refused", `CONNECT to port ${port} is refused: this sidecar's app ports are ${allowed.join(", ")} (inbound.app, protocols.inbound_tcp_ports)`, "connect_target");
        }
        void join(t.socket, `${appHost}:${port}`, [t.head], responseHead(200, "Connection established"), tcpIdleMs, track);
        return;
      }
      // WebSocket: the peer's request goes to the app as it came (the app answers 101 itself),
      // with the caller's identity asserted by this sidecar, as for requests.
      const headers = new Headers(t.request.headers);
      for (const name of HOP_BY_HOP) headers.delete(name);
      setClientCertHeader(headers, d.ownId(), caller);
      void join(t.socket, d.app, [requestHead(t.request.method, `${url.pathname}${url.search}`, headers), t.head], undefined, wsIdleMs, track);
    },
    // Plaintext that is neither HTTP/1 nor HTTP/2 on a PERMISSIVE or DISABLE inbound: the app's own port, as plaintext HTTP is.
    opaque(socket: Duplex, head: Uint8Array, info: ConnInfo) {
      socket.on("error", () => {});
      const track = trackTunnel(d.metrics, d.log, d.clock, { direction: "inbound", kind: "tcp", destination: "app", remote: `${info.remoteAddress}:${info.remotePort}` });
      const verdict = authorize(d.authorization?.(), { method: "CONNECT", path: "/" });
      if (!verdict.allowed) {
        d.metrics.inboundDenied.inc({ reason: "authz" });
        track.failed("denied", verdict.reason ?? "denied");
        return void socket.destroy();
      }
      void join(socket, d.app, [head], undefined, tcpIdleMs, track, false);
    },
  };
}
