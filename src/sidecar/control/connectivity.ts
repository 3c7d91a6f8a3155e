// How the sidecar lives with an unreachable control plane: capped exponential back-off
// with jitter between attempts, and the outage logged once when it starts and once when it
// ends, never once per retry (the sidecar keeps serving meanwhile).

import type { Random } from "../../core/clock.ts";
import type { Logger } from "../logger.ts";

export interface BackoffOptions {
  /** First delay, ms. Default 250. */
  baseMs?: number;
  /** Cap, ms. Default 10 s. */
  maxMs?: number;
}

/**
 * The delay before retry number `attempt` (0-based): base·2^attempt capped at max, then
 * "equal jitter" (half fixed, half random) so many sidecars do not reconnect in lockstep
 * after a control-plane restart, while a delay never collapses to zero.
 */
export function backoffDelay(attempt: number, random: Random, o: BackoffOptions = {}): number {
  const base = o.baseMs ?? 250;
  const max = o.maxMs ?? 10_000;
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + (ceiling / 2) * random();
}

/** Thrown by the client's request helper when the control plane could not answer (network error or 5xx). */
export class Unreachable extends Error {
  override name = "Unreachable";
}

export interface Outage {
  failed(reason: string): void;
  ok(): void;
  readonly down: boolean;
}

export function createOutage(log: Logger, now: () => number): Outage {
  let since: number | undefined;
  return {
    failed(reason) {
      if (since !== undefined) return;
      since = now();
      log.warn({ error: reason }, `control plane unreachable: ${reason}; serving with the last good config and certificate`);
    },
    ok() {
      if (since === undefined) return;
      log.info({ outage_ms: now() - since }, "control plane reachable again");
      since = undefined;
    },
    get down() {
      return since !== undefined;
    },
  };
}
