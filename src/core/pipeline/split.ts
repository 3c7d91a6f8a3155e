// Split stage: sends each request to one subset of the destination, chosen by the rule's
// weights (Istio's weighted route destinations). A subset is the endpoints whose labels
// include all of the subset's; the request's attempts, retries included, stay inside it.

import type { Random } from "../clock.ts";
import type { EventSink } from "../events.ts";
import type { Subset, WeightedSubset } from "../policy/types.ts";
import type { Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import type { Destination } from "./destination.ts";
import { localReply } from "./local-reply.ts";
import { routedOf } from "./match.ts";

/** Picks one branch with probability weight / total; `random` in [0, 1). */
export function pickWeighted<T extends { weight: number }>(branches: readonly T[], random: Random): T | undefined {
  const total = branches.reduce((sum, b) => sum + b.weight, 0);
  if (total <= 0) return undefined;
  let point = random() * total;
  for (const b of branches) {
    if (b.weight <= 0) continue;
    if (point < b.weight) return b;
    point -= b.weight;
  }
  // random() close to 1 and float rounding: the last branch with weight.
  return branches.findLast((b) => b.weight > 0);
}

export function inSubset(labels: Readonly<Record<string, string>> | undefined, subset: Subset): boolean {
  return Object.entries(subset.labels).every(([k, v]) => labels?.[k] === v);
}

const views = new WeakMap<Destination, Map<string, Destination>>();

/** The destination narrowed to one subset's endpoints; cached per table snapshot. */
export function subsetView(destination: Destination, subset: Subset): Destination {
  let bySubset = views.get(destination);
  if (bySubset === undefined) views.set(destination, (bySubset = new Map()));
  let view = bySubset.get(subset.name);
  if (view === undefined) {
    view = { ...destination, endpoints: destination.endpoints.filter((e) => inSubset(e.endpoint.labels, subset)) };
    bySubset.set(subset.name, view);
  }
  return view;
}

export function split(deps: { random: Random; onEvent?: EventSink }): Stage {
  return (next) => (req, ctx) => {
    const routed = routedOf(ctx);
    if (routed === undefined) return next(req, ctx);
    const destination = destinationOf(ctx);
    const branch: WeightedSubset | undefined = routed.rule.split === undefined ? undefined : pickWeighted(routed.rule.split, deps.random);
    const subsetName = branch?.subset;
    deps.onEvent?.({
      type: "rule",
      requestId: ctx.requestId,
      destination: destination.name,
      rule: routed.rule.name,
      ...(subsetName !== undefined ? { subset: subsetName } : {}),
    });
    if (subsetName === undefined) return next(req, ctx);
    const subset = destination.policy.subsets?.find((s) => s.name === subsetName);
    // parsePolicy refuses a split naming an undefined subset; an empty one is normal.
    const view = subset === undefined ? undefined : subsetView(destination, subset);
    if (view === undefined || view.endpoints.length === 0) {
      const labels = Object.entries(subset?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
      // Envoy's answer when a cluster has no host to send to.
      return Promise.resolve(localReply(503, `no healthy upstream (remora: subset "${subsetName}" of "${destination.name}" has no endpoint labelled ${labels})`));
    }
    ctx.destination = view;
    return next(req, ctx);
  };
}
