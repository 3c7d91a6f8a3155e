// Round robin as "least recently picked": over a stable set it is plain rotation, and it
// stays fair when the set changes (an endpoint returning from ejection, or a retry that
// excludes tried endpoints) instead of skipping or repeating like an index modulo length.

import type { Balancer, Candidate } from "./balancer.ts";
import { first } from "./balancer.ts";

export function roundRobin(): Balancer {
  const lastPicked = new Map<string, number>();
  let tick = 0;
  return {
    name: "round_robin",
    pick<T extends Candidate>(candidates: readonly T[]): T {
      let best = first(candidates);
      let bestTick = lastPicked.get(best.address) ?? -1;
      for (const c of candidates) {
        const t = lastPicked.get(c.address) ?? -1;
        if (t < bestTick) {
          best = c;
          bestTick = t;
        }
      }
      lastPicked.set(best.address, tick++);
      return best;
    },
  };
}
