// Least request with equal weights: power of two choices (Envoy load_balancers.rst,
// choice_count 2): two distinct random candidates, the one with fewer requests in flight.

import type { Random } from "../clock.ts";
import type { Balancer, Candidate } from "./balancer.ts";
import { first, randomIndex } from "./balancer.ts";

export function leastRequest(): Balancer {
  return {
    name: "least_request",
    pick<T extends Candidate>(candidates: readonly T[], random: Random): T {
      if (candidates.length === 1) return first(candidates);
      const i = randomIndex(candidates.length, random);
      let j = randomIndex(candidates.length - 1, random);
      if (j >= i) j++;
      const a = candidates[i] ?? first(candidates);
      const b = candidates[j] ?? first(candidates);
      if (a.activeRequests !== b.activeRequests) return a.activeRequests < b.activeRequests ? a : b;
      return random() < 0.5 ? a : b;
    },
  };
}
