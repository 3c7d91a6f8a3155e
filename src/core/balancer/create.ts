// Builds the balancer a policy's `load_balancer` names.

import type { LoadBalancer } from "../policy/types.ts";
import type { Balancer } from "./balancer.ts";
import { leastRequest } from "./least-request.ts";
import { randomBalancer } from "./random.ts";
import { roundRobin } from "./round-robin.ts";

export function createBalancer(kind: LoadBalancer): Balancer {
  switch (kind) {
    case "round_robin":
      return roundRobin();
    case "least_request":
      return leastRequest();
    case "random":
      return randomBalancer();
  }
}
