// One place that counts and logs a tunnel or opaque TCP connection over its life: the
// result of opening it, live bytes and the active gauge, and one access-log line when it
// closes (remora_tcp_* metrics, docs/protocols.md).

import type { Clock } from "../core/clock.ts";
import type { MeshMetrics } from "../core/metrics/mesh-metrics.ts";
import type { Logger } from "./logger.ts";
import type { PipeResult } from "./pipe.ts";

export type TunnelKind = "tcp" | "connect" | "websocket";

export interface TunnelRecord {
  direction: "outbound" | "inbound";
  kind: TunnelKind;
  /** Logical destination (outbound) or "app" (inbound). */
  destination: string;
  remote: string;
  peer?: string;
  upstream?: string;
  attempts?: number;
}

export interface TunnelTracker {
  /** Bytes as they pass (for PipeOptions.onBytes). */
  bytes(flow: "sent" | "received", n: number): void;
  /** The connection is open both ways: counted as success and active. */
  opened(extra?: Partial<TunnelRecord>): void;
  /** Opening failed: counted with `result`, one access line with the reason. */
  failed(result: string, reason: string, extra?: Partial<TunnelRecord>): void;
  /** The pipe ended: gauge down, one access line. */
  closed(r: PipeResult): void;
}

export function trackTunnel(metrics: MeshMetrics, log: Logger, clock: Clock, record: TunnelRecord): TunnelTracker {
  const start = clock.now();
  const labels = { direction: record.direction, destination: record.destination };
  let r = record;
  const line = (fields: object) => log.info({
    direction: r.direction,
    protocol: r.kind,
    destination: r.destination,
    remote: r.remote,
    upstream: r.upstream,
    peer: r.peer,
    attempts: r.attempts,
    duration_ms: clock.now() - start,
    ...fields,
  }, "access");
  return {
    bytes(flow, n) {
      metrics.tcpBytes.inc({ ...labels, flow }, n);
    },
    opened(extra = {}) {
      r = { ...r, ...extra };
      metrics.tcpConnections.inc({ ...labels, result: "success" });
      metrics.tcpActive.inc(labels);
    },
    failed(result, reason, extra = {}) {
      r = { ...r, ...extra };
      metrics.tcpConnections.inc({ ...labels, result });
      line({ result, reason, bytes_sent: 0, bytes_received: 0 });
    },
    closed(p) {
      metrics.tcpActive.dec(labels);
      line({ result: "success", end: p.end, ...(p.error ? { reason: p.error } : {}), bytes_sent: p.sent, bytes_received: p.received });
    },
  };
}
