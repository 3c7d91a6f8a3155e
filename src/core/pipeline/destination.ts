// The outbound table: per destination its policy, endpoints and the balancer and outlier
// state that must survive a config swap for endpoints that remain (matched by address).

import type { Balancer } from "../balancer/balancer.ts";
import { createBalancer } from "../balancer/create.ts";
import type { Clock } from "../clock.ts";
import type { Endpoint } from "../endpoint.ts";
import type { EventSink } from "../events.ts";
import { clearHostHealth, type HostHealth, newHostHealth, OutlierDetector } from "../outlier.ts";
import type { Policy } from "../policy/types.ts";
import { logicalName } from "../router.ts";

export interface EndpointState {
  readonly address: string;
  /** Replaced on update (the identity may change); the state below is kept. */
  endpoint: Endpoint;
  activeRequests: number;
  readonly health: HostHealth;
}

export interface Destination {
  readonly name: string;
  readonly policy: Policy;
  readonly endpoints: readonly EndpointState[];
  readonly balancer: Balancer;
  /** Undefined when the policy has no outlier_detection. */
  readonly outlier: OutlierDetector | undefined;
}

export interface TableConfig {
  policies: readonly Policy[];
  endpoints: Readonly<Record<string, readonly Endpoint[]>>;
}

export interface TableDeps {
  clock: Clock;
  onEvent?: EventSink;
  defaultPolicy: (destination: string) => Policy;
}

/**
 * Builds the table for `config`, reusing state from `previous`. Pure until it returns,
 * so a failure (e.g. defaultPolicy throwing) leaves the previous table in place.
 */
export function buildTable(config: TableConfig, previous: ReadonlyMap<string, Destination>, deps: TableDeps): Map<string, Destination> {
  const policies = new Map<string, Policy>();
  for (const p of config.policies) policies.set(logicalName(p.route.destination), p);
  const table = new Map<string, Destination>();
  for (const [rawName, endpoints] of Object.entries(config.endpoints)) {
    const name = logicalName(rawName);
    const policy = policies.get(name) ?? deps.defaultPolicy(name);
    table.set(name, buildDestination(name, policy, endpoints, previous.get(name), deps));
  }
  return table;
}

function buildDestination(name: string, policy: Policy, endpoints: readonly Endpoint[], old: Destination | undefined, deps: TableDeps): Destination {
  const oldStates = new Map(old?.endpoints.map((e) => [e.address, e]));
  const states = new Map<string, EndpointState>();
  for (const endpoint of endpoints) {
    if (states.has(endpoint.address)) continue;
    const kept = oldStates.get(endpoint.address);
    if (kept !== undefined) kept.endpoint = endpoint;
    states.set(endpoint.address, kept ?? { address: endpoint.address, endpoint, activeRequests: 0, health: newHostHealth() });
  }
  const list = [...states.values()];
  const balancer = old !== undefined && old.balancer.name === policy.route.loadBalancer ? old.balancer : createBalancer(policy.route.loadBalancer);
  return { name, policy, endpoints: list, balancer, outlier: carryOutlier(name, policy, list, old, deps) };
}

function carryOutlier(name: string, policy: Policy, list: readonly EndpointState[], old: Destination | undefined, deps: TableDeps): OutlierDetector | undefined {
  const previous = old?.outlier;
  if (policy.outlier === undefined) {
    // Detection switched off: nothing may stay ejected by a detector that no longer exists.
    for (const e of list) {
      if (!e.health.ejected) continue;
      clearHostHealth(e.health);
      deps.onEvent?.({ type: "uneject", destination: name, endpoint: e.address });
    }
    return undefined;
  }
  if (previous === undefined) {
    return new OutlierDetector({ destination: name, policy: policy.outlier, clock: deps.clock, onEvent: deps.onEvent });
  }
  previous.sweep(old?.endpoints ?? list);
  previous.setPolicy(policy.outlier);
  return previous;
}
