// Graceful drain (SIGTERM, admin POST /shutdown): leave the registry first, keep serving
// while the removal reaches the callers, then stop accepting and let in-flight requests
// finish within the drain timeout (docs/hardening.md).
//
// Why a fixed propagation delay rather than waiting for callers' ACKs: a sidecar cannot
// see other proxies' ACKs (that is the control plane's admin API), and callers hold
// long-poll watches, so the snapshot without this endpoint reaches them within
// milliseconds on a healthy mesh; the delay bounds the slow case. A caller that still
// picks this endpoint after the listeners close gets connect-failure (or a reset on a
// pooled connection) and its retry_policy moves on to another replica.

import type { Clock } from "../core/clock.ts";
import type { Logger } from "./logger.ts";

export interface DrainSteps {
  /** Deregister from the control plane (absent in static mode, where nobody else learns of us). */
  deregister?: () => Promise<void>;
  /** Stop accepting and finish in-flight requests (Sidecar.close, bounded by its drainMs). */
  close: () => Promise<void>;
  clock: Clock;
  log: Logger;
  /** How long to keep serving after deregistering, so callers drop this endpoint first. */
  propagationMs: number;
  /** The whole drain's bound, for the log line. */
  drainMs: number;
  signal: string;
}

/** Default propagation delay: a few long-poll round trips on a slow network. */
export const DEFAULT_DRAIN_DELAY_MS = 2000;

export async function drain(s: DrainSteps): Promise<void> {
  const start = s.clock.now();
  s.log.info({ signal: s.signal, drain_ms: s.drainMs, propagation_ms: s.deregister ? s.propagationMs : 0 }, "draining");
  if (s.deregister) {
    try {
      await s.deregister();
    } catch (e) {
      // The registry drops us once heartbeats lapse; draining goes on regardless.
      s.log.warn({ error: (e as Error)?.message ?? String(e) }, "deregistering from the control plane failed; callers learn of the exit when heartbeats lapse");
    }
    if (s.propagationMs > 0) await s.clock.sleep(s.propagationMs);
  }
  await s.close();
  s.log.info({ signal: s.signal, took_ms: s.clock.now() - start }, "drained");
}
