// Random: a uniformly random candidate (Envoy load_balancers.rst, Random).

import type { Random } from "../clock.ts";
import type { Balancer, Candidate } from "./balancer.ts";
import { first, randomIndex } from "./balancer.ts";

export function randomBalancer(): Balancer {
  return {
    name: "random",
    pick<T extends Candidate>(candidates: readonly T[], random: Random): T {
      return candidates[randomIndex(candidates.length, random)] ?? first(candidates);
    },
  };
}
