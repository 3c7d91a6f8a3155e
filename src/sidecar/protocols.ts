// Protocol settings of a sidecar (docs/protocols.md): detection wait, opaque_ports and
// skip_ports, tunnel idle timeouts, explicit TCP listeners (`--tcp`), and the inbound ports
// a peer's CONNECT may reach. The static config's `protocols:` block and the proxy flags
// both become ProtocolSettings here.

import * as v from "valibot";
import { RemoraError } from "../core/errors.ts";
import { parseDuration } from "../core/duration.ts";

/** Opaque TCP tunnels idle this long are closed (Envoy tcp_proxy's idle_timeout default: 1 h). */
export const DEFAULT_TCP_IDLE_MS = 3_600_000;
/** WebSocket tunnels: the same hour; a chatty app keeps its session, a forgotten one goes. */
export const DEFAULT_WEBSOCKET_IDLE_MS = 3_600_000;

/** An explicit local listener for one destination port (Consul's upstream local_bind_port). */
export interface TcpListenerSettings {
  /** host:port the app connects to, e.g. 127.0.0.1:15432. */
  listen: string;
  /** Logical destination name. */
  destination: string;
  /** The destination's port: the peer sidecar's CONNECT target 127.0.0.1:<port>. */
  port: number;
}

export interface ProtocolSettings {
  /** Per connection: how long a plaintext client may stay silent before it is taken for server-first (opaque); default 1 s. */
  detectTimeoutMs?: number;
  /** Destination ports whose traffic is opaque TCP without detection (PostgreSQL 5432, MySQL 3306, SMTP 25 …): a listener per service VIP and port. */
  opaquePorts?: number[];
  /** Ports never proxied: `remora init --skip-ports` leaves them unredirected; shown on /config. */
  skipPorts?: number[];
  /** Per connection, opaque TCP and CONNECT tunnels: idle this long, closed; default 1 h. */
  tcpIdleTimeoutMs?: number;
  /** Per connection, WebSocket (Upgrade) tunnels: idle this long, closed; default 1 h. */
  websocketIdleTimeoutMs?: number;
  /** Explicit listeners, for pods without redirection (no root). */
  tcp?: TcpListenerSettings[];
  /** Inbound: app ports besides the app's own that a peer's CONNECT may reach. */
  inboundTcpPorts?: number[];
  /**
   * How HTTP/1.1 requests travel to a peer sidecar: "http1" (default) on pooled HTTP/1.1 mTLS
   * connections, "h2" as streams on the one multiplexed h2 connection per peer that gRPC
   * uses (Linkerd's orig-proto upgrade; the peer downgrades for its app).
   */
  meshProtocol?: MeshProtocol;
}

export type MeshProtocol = "http1" | "h2";

const port = v.pipe(v.number(), v.integer("must be a whole number"), v.minValue(1, "must be a TCP port (1-65535)"), v.maxValue(65535, "must be a TCP port (1-65535)"));
const address = v.pipe(v.string(), v.regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port"));

/** `protocols:` in the static sidecar config. */
export const protocolsSchema = v.strictObject({
  /** Duration, per connection (default 1s). */
  detect_timeout: v.optional(v.string()),
  opaque_ports: v.optional(v.array(port)),
  skip_ports: v.optional(v.array(port)),
  /** Duration, per connection (default 1h). */
  tcp_idle_timeout: v.optional(v.string()),
  /** Duration, per connection (default 1h). */
  websocket_idle_timeout: v.optional(v.string()),
  tcp: v.optional(v.array(v.strictObject({
    listen: address,
    /** "<name>:<port>", e.g. postgres:5432. */
    destination: v.pipe(v.string(), v.regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, "must be <destination>:<port>, e.g. postgres:5432")),
  }))),
  /** Inbound app ports a peer's CONNECT may reach besides inbound.app's. */
  inbound_tcp_ports: v.optional(v.array(port)),
  mesh_protocol: v.optional(v.picklist(["http1", "h2"], "must be http1 or h2")),
});

export type ProtocolsDocument = v.InferOutput<typeof protocolsSchema>;

function duration(text: string, field: string): number {
  try {
    return parseDuration(text);
  } catch {
    throw new RemoraError("ERR_CONFIG_INVALID", `${field}: "${text}" is not a duration (e.g. 1s, 500ms, 1h)`);
  }
}

/** "postgres:5432" as a destination and port; `field` names the flag or field in the error. */
export function destinationPort(text: string, field: string): { destination: string; port: number } {
  const m = /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(text.trim());
  const p = Number(m?.[2]);
  if (!m || p < 1 || p > 65535) throw new RemoraError("ERR_CONFIG_INVALID", `${field}: "${text}" is not <destination>:<port> (e.g. postgres:5432)`);
  return { destination: m[1]!.toLowerCase(), port: p };
}

/** The document's fields as ProtocolSettings; `where` prefixes field names in errors ("FILE: protocols."). */
export function protocolsFromDocument(doc: ProtocolsDocument | undefined, where: string): ProtocolSettings {
  if (!doc) return {};
  const out: ProtocolSettings = {};
  if (doc.detect_timeout !== undefined) out.detectTimeoutMs = duration(doc.detect_timeout, `${where}detect_timeout`);
  if (doc.opaque_ports) out.opaquePorts = [...new Set(doc.opaque_ports)];
  if (doc.skip_ports) out.skipPorts = [...new Set(doc.skip_ports)];
  if (doc.tcp_idle_timeout !== undefined) out.tcpIdleTimeoutMs = duration(doc.tcp_idle_timeout, `${where}tcp_idle_timeout`);
  if (doc.websocket_idle_timeout !== undefined) out.websocketIdleTimeoutMs = duration(doc.websocket_idle_timeout, `${where}websocket_idle_timeout`);
  if (doc.tcp) out.tcp = doc.tcp.map((t, i) => ({ listen: t.listen, ...destinationPort(t.destination, `${where}tcp[${i}].destination`) }));
  if (doc.inbound_tcp_ports) out.inboundTcpPorts = [...new Set(doc.inbound_tcp_ports)];
  if (doc.mesh_protocol) out.meshProtocol = doc.mesh_protocol;
  const both = out.opaquePorts?.find((p) => out.skipPorts?.includes(p));
  if (both !== undefined) throw new RemoraError("ERR_CONFIG_INVALID", `${where}opaque_ports and ${where}skip_ports both list port ${both}; a port is either proxied as opaque TCP or not proxied`);
  return out;
}

/** `remora proxy` flags (both modes), for util.parseArgs. */
export const protocolFlags = {
  "opaque-ports": { type: "string" },
  "skip-ports": { type: "string" },
  tcp: { type: "string", multiple: true },
  "detect-timeout": { type: "string" },
  "tcp-idle-timeout": { type: "string" },
  "websocket-idle-timeout": { type: "string" },
  "inbound-tcp-ports": { type: "string" },
  "mesh-protocol": { type: "string" },
} as const;

export const protocolFlagsUsage = `Protocols (docs/protocols.md):
  --opaque-ports P[,P]      destination ports carried as opaque TCP, no detection (e.g. 5432,3306)
  --skip-ports P[,P]        ports never proxied (give the same list to remora init --skip-ports)
  --tcp ADDR=NAME:PORT      a local listener for one destination port, e.g. 127.0.0.1:15432=postgres:5432; repeatable
  --detect-timeout D        a silent client is taken for server-first after D (default 1s)
  --tcp-idle-timeout D      opaque TCP and CONNECT tunnels idle for D are closed (default 1h)
  --websocket-idle-timeout D  WebSocket tunnels idle for D are closed (default 1h)
  --inbound-tcp-ports P[,P] app ports besides --app's that peers may CONNECT to
  --mesh-protocol http1|h2  how the app's HTTP/1.1 requests reach peer sidecars (default http1;
                            h2: streams on one multiplexed mTLS connection per peer)`;

type FlagValues = { [K in keyof typeof protocolFlags]?: K extends "tcp" ? string[] | undefined : string | undefined };

function portsFlag(flag: string, text: string): number[] {
  if (text.trim() === "") return [];
  return text.split(",").map((p) => {
    const n = Number(p.trim());
    if (!/^\d+$/.test(p.trim()) || n < 1 || n > 65535) throw new RemoraError("ERR_CONFIG_INVALID", `--${flag} "${text}" is not a list of TCP ports (e.g. 5432,3306)`);
    return n;
  });
}

/** The flags as ProtocolSettings (only the ones given), to lay over the config file's. */
export function protocolsFromFlags(values: FlagValues): ProtocolSettings {
  const out: ProtocolSettings = {};
  if (values["opaque-ports"] !== undefined) out.opaquePorts = portsFlag("opaque-ports", values["opaque-ports"]);
  if (values["skip-ports"] !== undefined) out.skipPorts = portsFlag("skip-ports", values["skip-ports"]);
  if (values["inbound-tcp-ports"] !== undefined) out.inboundTcpPorts = portsFlag("inbound-tcp-ports", values["inbound-tcp-ports"]);
  if (values["detect-timeout"] !== undefined) out.detectTimeoutMs = duration(values["detect-timeout"], "--detect-timeout");
  if (values["tcp-idle-timeout"] !== undefined) out.tcpIdleTimeoutMs = duration(values["tcp-idle-timeout"], "--tcp-idle-timeout");
  if (values["websocket-idle-timeout"] !== undefined) out.websocketIdleTimeoutMs = duration(values["websocket-idle-timeout"], "--websocket-idle-timeout");
  const mesh = values["mesh-protocol"];
  if (mesh !== undefined) {
    if (mesh !== "http1" && mesh !== "h2") throw new RemoraError("ERR_CONFIG_INVALID", `--mesh-protocol "${mesh}" is not http1 or h2`);
    out.meshProtocol = mesh;
  }
  if (values.tcp) {
    out.tcp = values.tcp.map((item) => {
      const eq = item.indexOf("=");
      const listen = item.slice(0, eq);
      if (eq <= 0 || !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(listen)) {
        throw new RemoraError("ERR_CONFIG_INVALID", `--tcp "${item}" is not ADDR=NAME:PORT (e.g. 127.0.0.1:15432=postgres:5432)`);
      }
      return { listen, ...destinationPort(item.slice(eq + 1), `--tcp "${item}"`) };
    });
  }
  return out;
}

/** Flags over the file's settings: scalar fields and port lists replace, `--tcp` listeners add to the file's. */
export function mergeProtocols(file: ProtocolSettings | undefined, flags: ProtocolSettings): ProtocolSettings {
  const merged = { ...file, ...flags };
  if (file?.tcp && flags.tcp) merged.tcp = [...file.tcp, ...flags.tcp];
  return merged;
}
