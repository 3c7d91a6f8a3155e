// The outbound side of tunnels and opaque TCP (docs/protocols.md): an app's WebSocket
// Upgrade or CONNECT on the outbound listener, and connections to the TCP listeners the
// sidecar binds (one per service VIP and opaque port, and explicit `--tcp` ones). Each is
// routed by name like a request, balanced per connection through the pipeline (connect-
// failure retries, outlier state) and carried to the chosen peer's inbound over mTLS.

import type { Clock } from "../core/clock.ts";
import { isRemoraError } from "../core/errors.ts";
import type { MeshMetrics } from "../core/metrics/mesh-metrics.ts";
import type { Outbound } from "../core/pipeline.ts";
import { closingResponse, requestHead, responseHead } from "../core/protocol/http1-head.ts";
import { logicalName, readdressVip, destinationName } from "../core/router.ts";
import { UpstreamError } from "../core/upstream.ts";
import type { Duplex, Listener, ListenerLimits, Runtime, StreamHandlers, TunnelRequest } from "../runtime/types.ts";
import { TunnelRefused, type MeshTunnelDialer, type OpenedTunnel } from "../runtime/tunnel-dialer.ts";
import type { Logger } from "./logger.ts";
import { pipeBoth } from "./pipe.ts";
import { DEFAULT_TCP_IDLE_MS, DEFAULT_WEBSOCKET_IDLE_MS, type ProtocolSettings, type TcpListenerSettings } from "./protocols.ts";
import { trackTunnel, type TunnelKind, type TunnelTracker } from "./tunnel-log.ts";

export interface OutboundTunnelDeps {
  runtime: Runtime;
  pipeline: Outbound;
  dialer: MeshTunnelDialer;
  metrics: MeshMetrics;
  clock: Clock;
  log: Logger;
  protocols: ProtocolSettings;
  limits: Partial<ListenerLimits>;
  /** VIP -> service name (the control plane's `services`), read per connection. */
  vips: () => ReadonlyMap<string, string>;
  /** On-demand config: resolve a name before routing it; a string is the reason it cannot be. */
  discover?: (name: string, signal: AbortSignal) => Promise<string | undefined>;
}

export interface OutboundTunnels {
  /** For the outbound listener's ServeOptions.streams. */
  readonly streams: StreamHandlers;
  /** Opens the explicit `tcp` listeners (a bind failure is an ERR_LISTEN naming the address). */
  start(): Promise<void>;
  /** One listener per service VIP and opaque port; called on every config change. */
  updateServices(services: Readonly<Record<string, { vip: string }>> | undefined): Promise<void>;
  /** The TCP listeners open now, for the log and /config. */
  listeners(): { listen: string; destination: string; port: number }[];
  reloadTls(): void;
  close(graceMs: number): Promise<void>;
}

const HOP_BY_HOP_KEPT_FOR_UPGRADE = new Set(["connection", "upgrade"]);
const HOP_BY_HOP = ["keep-alive", "proxy-connection", "proxy-authorization", "te", "trailer", "transfer-encoding"];

export function createOutboundTunnels(d: OutboundTunnelDeps): OutboundTunnels {
  const tcpIdleMs = d.protocols.tcpIdleTimeoutMs ?? DEFAULT_TCP_IDLE_MS;
  const wsIdleMs = d.protocols.websocketIdleTimeoutMs ?? DEFAULT_WEBSOCKET_IDLE_MS;
  const explicit = new Map<string, { settings: TcpListenerSettings; listener: Listener }>();
  const byVip = new Map<string, { settings: TcpListenerSettings; listener: Listener }>();
  const unbindable = new Set<string>();
  let closing = false;

  /** Balances one connection to `name` and opens the mesh tunnel with `head`; the tracker learns the outcome. */
  async function open(name: string, head: Uint8Array, expect: "connect" | "raw", track: TunnelTracker) {
    if (d.discover) {
      const refused = await d.discover(logicalName(name), AbortSignal.timeout(30_000));
      if (refused !== undefined) throw new UpstreamError("connect-failure", name, refused);
    }
    return d.pipeline.connect<OpenedTunnel>(name, async (endpoint, a) => {
      const t = await d.dialer.open(endpoint, { mode: a.tls, head, expect });
      a.onConnection({ reused: false, ...(t.peerIdentity ? { peerIdentity: t.peerIdentity } : {}), ...(t.handshakeMs !== undefined ? { handshakeMs: t.handshakeMs } : {}) });
      return t;
    }).then((c) => {
      track.opened({ upstream: c.endpoint.address, attempts: c.attempts, ...(c.value.peerIdentity ? { peer: c.value.peerIdentity } : {}) });
      return c;
    });
  }

  /** Why opening failed, as a metric result, an HTTP answer for the app, and a sentence. */
  function failure(e: unknown): { result: string; status: number; reason: string; message: string } {
    if (isRemoraError(e, "ERR_NO_ROUTE")) return { result: "no_route", status: 404, reason: "Not Found", message: e.message };
    if (e instanceof TunnelRefused) return { result: "refused", status: e.status, reason: e.head.reason || "Refused", message: e.message };
    if (e instanceof UpstreamError) return { result: e.kind.replace("-", "_"), status: 503, reason: "Service Unavailable", message: e.message };
    return { result: "error", status: 502, reason: "Bad Gateway", message: e instanceof Error ? e.message : String(e) };
  }

  /** A connection whose destination and port are known from where it arrived (TCP listeners). */
  function carryOpaque(settings: TcpListenerSettings, socket: Duplex, first: Uint8Array, remote: string): void {
    const track = trackTunnel(d.metrics, d.log, d.clock, { direction: "outbound", kind: "tcp", destination: logicalName(settings.destination), remote });
    socket.on("error", () => {});
    open(settings.destination, connectHead(settings.port), "connect", track).then(
      async (c) => {
        if (c.value.rest.length > 0) socket.write(c.value.rest);
        if (first.length > 0) c.value.socket.write(first);
        const r = await pipeBoth(socket, c.value.socket, { clock: d.clock, idleMs: tcpIdleMs, onBytes: track.bytes });
        c.release();
        track.closed(r);
      },
      (e: unknown) => {
        const f = failure(e);
        track.failed(f.result, f.message);
        socket.destroy(); // opaque: no protocol of ours to say why in
      },
    );
  }

  function onTunnel(t: TunnelRequest): void {
    const remote = t.info.remote;
    t.socket.on("error", () => {});
    const req = readdressVip(t.request, d.vips());
    const url = new URL(req.url);
    const name = destinationName(req);
    const kind: TunnelKind = t.kind === "connect" ? "connect" : "websocket";
    const track = trackTunnel(d.metrics, d.log, d.clock, { direction: "outbound", kind, destination: name ?? "unknown", remote });
    if (name === undefined) {
      track.failed("no_route", "the request names no host");
      return void answer(t.socket, closingResponse(400, "Bad Request", "remora: the request names no host to route by\n"));
    }
    let head: Uint8Array;
    try {
      head = t.kind === "connect" ? connectHead(Number(url.port || 443)) : upgradeHead(req);
    } catch (e) {
      track.failed("bad_request", (e as Error).message);
      return void answer(t.socket, closingResponse(400, "Bad Request", `remora: ${(e as Error).message}\n`));
    }
    open(name, head, t.kind === "connect" ? "connect" : "raw", track).then(
      async (c) => {
        // CONNECT: the app hears "established" from us; Upgrade: it reads the peer app's 101 itself.
        if (t.kind === "connect") t.socket.write(responseHead(200, "Connection established"));
        if (c.value.rest.length > 0) t.socket.write(c.value.rest);
        if (t.head.length > 0) c.value.socket.write(t.head);
        const r = await pipeBoth(t.socket, c.value.socket, { clock: d.clock, idleMs: t.kind === "connect" ? tcpIdleMs : wsIdleMs, onBytes: track.bytes });
        c.release();
        track.closed(r);
      },
      (e: unknown) => {
        const f = failure(e);
        track.failed(f.result, f.message);
        answer(t.socket, closingResponse(f.status, f.reason, `remora: ${f.message}\n`));
      },
    );
  }

  async function bind(settings: TcpListenerSettings): Promise<Listener> {
    return d.runtime.serve({
      listen: settings.listen,
      limits: d.limits,
      // Never called: detection is off, every connection is opaque at once.
      handler: async () => new Response("remora: this is a TCP listener\n", { status: 400 }),
      streams: {
        detectTimeoutMs: 0,
        opaque: (socket, first, info) => carryOpaque(settings, socket, first, info.remote),
      },
    });
  }

  return {
    streams: {
      ...(d.protocols.detectTimeoutMs !== undefined ? { detectTimeoutMs: d.protocols.detectTimeoutMs } : {}),
      tunnel: onTunnel,
      // Detected as opaque (or an app's own TLS) on the redirect port: without HTTP and
      // without the original destination there is nothing to route by.
      opaque: (socket, _head, info) => {
        const remote = info.remote;
        trackTunnel(d.metrics, d.log, d.clock, { direction: "outbound", kind: "tcp", destination: "unknown", remote })
          .failed("no_route", "opaque TCP reached the outbound listener, which routes by HTTP Host only; list the destination port in opaque_ports (VIP listeners) or use --tcp");
        socket.destroy();
      },
    },
    async start() {
      for (const s of d.protocols.tcp ?? []) {
        const listener = await bind(s);
        explicit.set(s.listen, { settings: s, listener });
        d.log.info({ listen: listener.address, destination: s.destination, port: s.port }, "tcp listener ready");
      }
    },
    async updateServices(services) {
      if (closing) return;
      const ports = d.protocols.opaquePorts ?? [];
      const wanted = new Map<string, TcpListenerSettings>();
      for (const [name, s] of Object.entries(services ?? {})) {
        for (const port of ports) wanted.set(`${s.vip}:${port}`, { listen: `${s.vip}:${port}`, destination: name, port });
      }
      for (const [key, entry] of byVip) {
        if (wanted.get(key)?.destination === entry.settings.destination) continue;
        byVip.delete(key);
        void entry.listener.close(0);
      }
      for (const [key, settings] of wanted) {
        if (byVip.has(key) || unbindable.has(key)) continue;
        try {
          byVip.set(key, { settings, listener: await bind(settings) });
          d.log.info({ listen: key, destination: settings.destination, port: settings.port }, "tcp listener ready");
        } catch (e) {
          // Without `remora init`'s local route for the VIP range the address is not local.
          unbindable.add(key);
          d.log.warn({ listen: key, destination: settings.destination, error: (e as Error).message }, "cannot bind a VIP listener for an opaque port; run remora init (it adds the local route for the VIP range) or use --tcp");
        }
      }
    },
    listeners() {
      return [...explicit.values(), ...byVip.values()].map((e) => ({ listen: e.listener.address, destination: e.settings.destination, port: e.settings.port }));
    },
    reloadTls() {
      d.dialer.reloadTls();
    },
    async close(graceMs) {
      closing = true;
      const all = [...explicit.values(), ...byVip.values()];
      explicit.clear();
      byVip.clear();
      await Promise.all(all.map((e) => e.listener.close(graceMs)));
    },
  };
}

/** A last answer on a socket, then its end. */
export function answer(socket: Duplex, bytes: Uint8Array): void {
  socket.write(bytes);
  socket.end();
}

/** CONNECT to the peer's local app port: the peer's inbound connects to loopback only. */
export function connectHead(port: number): Uint8Array {
  const target = `127.0.0.1:${port}`;
  return requestHead("CONNECT", target, [["host", target]]);
}

/** The app's Upgrade request for the peer: its own head, host readdressed, hop-by-hop headers except the upgrade pair dropped. */
function upgradeHead(req: Request): Uint8Array {
  const url = new URL(req.url);
  const headers = new Headers(req.headers);
  for (const name of headers.get("connection")?.split(",") ?? []) {
    const n = name.trim().toLowerCase();
    if (!HOP_BY_HOP_KEPT_FOR_UPGRADE.has(n)) headers.delete(n);
  }
  for (const name of HOP_BY_HOP) headers.delete(name);
  headers.set("host", url.host);
  return requestHead(req.method, `${url.pathname}${url.search}`, headers);
}
