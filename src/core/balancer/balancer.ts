// The load-balancer interface: choose one endpoint among the candidates the caller has
// already filtered (available, not yet tried). Envoy's policies: load_balancers.rst.

import type { Random } from "../clock.ts";
import type { LoadBalancer } from "../policy/types.ts";

/** What a balancer may look at; the pipeline's endpoint state satisfies it. */
export interface Candidate {
  readonly address: string;
  /** Requests in flight to this endpoint from this caller. */
  readonly activeRequests: number;
}

export interface Balancer {
  readonly name: LoadBalancer;
  /** `candidates` is never empty. */
  pick<T extends Candidate>(candidates: readonly T[], random: Random): T;
}

/** Uniform index in [0, n) from an injected Random (clamped so a Random returning 1 is safe). */
export function randomIndex(n: number, random: Random): number {
  return Math.min(n - 1, Math.floor(random() * n));
}

export function first<T>(candidates: readonly T[]): T {
  const c = candidates[0];
  if (c === undefined) throw new RangeError("a balancer was asked to pick from no candidates");
  return c;
}
