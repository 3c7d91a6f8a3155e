// Rejections (limits, refused TLS handshakes) counted and logged once per peer address and
// reason: a client retrying the same mistake in a loop must not flood the log.

import type { Clock } from "../core/clock.ts";
import type { Registry } from "../core/metrics/registry.ts";
import type { LimitReason, ServeOptions } from "../runtime/types.ts";
import type { Logger } from "./logger.ts";

/** Identical lines from one peer within this window collapse into one (the next says how many were skipped). */
const QUIET_MS = 60_000;

export interface PeerLog {
  /** Logs `msg` unless the same peer address and key were logged within the window. */
  warn(remote: string, key: string, fields: Record<string, unknown>, msg: string): void;
}

export function createPeerLog(log: Logger, clock: Clock, quietMs = QUIET_MS): PeerLog {
  const seen = new Map<string, { until: number; skipped: number }>();
  return {
    warn(remote, key, fields, msg) {
      const now = clock.now();
      const id = `${peerHost(remote)}\u0000${key}`;
      const entry = seen.get(id);
      if (entry && now < entry.until) {
        entry.skipped++;
        return;
      }
      // Bounded: forget expired entries once the table grows (a scan of many addresses).
      if (seen.size > 10_000) for (const [k, e] of seen) if (now >= e.until) seen.delete(k);
      seen.set(id, { until: now + quietMs, skipped: 0 });
      log.warn({ remote, ...fields, ...(entry?.skipped ? { repeated: entry.skipped } : {}) }, msg);
    },
  };
}

/** "192.0.2.1:40000" -> "192.0.2.1", "[::1]:1" -> "::1": a client's source port changes per connection. */
export function peerHost(remote: string): string {
  const m = /^\[(.*)\]:\d+$/.exec(remote) ?? /^([^:]+):\d+$/.exec(remote);
  return m?.[1] ?? remote;
}

/** remora_listener_rejected_total{listener,reason}, and the per-listener callback that feeds it. */
export function createListenerRejections(registry: Registry, peerLog: PeerLog) {
  const rejected = registry.counter({
    name: "remora_listener_rejected_total",
    help: "Requests or connections a listener refused for a limit, by listener and reason.",
    labelNames: ["listener", "reason"],
  });
  return {
    rejected,
    forListener(listener: "outbound" | "inbound" | "admin"): NonNullable<ServeOptions["onRejected"]> {
      return (reason: LimitReason, message: string, remote: string) => {
        rejected.inc({ listener, reason });
        peerLog.warn(remote, `${listener}:${reason}`, { listener, reason, error: message }, "request rejected by a listener limit");
      };
    },
  };
}
