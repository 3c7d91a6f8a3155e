// Mirror stage: a copy of a share of a rule's requests goes to another destination, fire
// and forget (Istio's mirror, Envoy's request_mirror_policies). The copy is never awaited:
// its answer is discarded, its failure only counted, and the caller's response and
// latency do not depend on it. As in Envoy, the copy's authority gets a "-shadow" suffix.

import { attemptRequest } from "../body.ts";
import type { Clock, Random } from "../clock.ts";
import type { EventSink } from "../events.ts";
import { discardResponse } from "../retry/signals.ts";
import type { Upstream } from "../upstream.ts";
import { candidatesFor } from "./balance.ts";
import type { Stage } from "./context.ts";
import type { Destination } from "./destination.ts";
import { chance } from "./fault.ts";
import { routedOf } from "./match.ts";

/** Bounds a copy whose destination has no route timeout (timeout: 0). */
const MIRROR_TIMEOUT_MS = 15_000;

export function mirror(
  lookup: (name: string) => Destination | undefined,
  deps: { send: Upstream; clock: Clock; random: Random; onEvent?: EventSink },
): Stage {
  return (next) => (req, ctx) => {
    const policy = routedOf(ctx)?.rule.mirror;
    // A body too large to buffer streams once, to the real destination only (Envoy's retry_or_shadow_abandoned).
    // A teed body has one reader at a time, and the real attempt is it.
    if (policy !== undefined && ctx.body.kind !== "streamed" && ctx.body.kind !== "teed" && chance(policy.percent, deps.random)) {
      const target = lookup(policy.destination);
      const base = { requestId: ctx.requestId, destination: ctx.destinationName ?? "", mirror: policy.destination };
      const failed = (message: string, endpoint?: string): void =>
        deps.onEvent?.({ type: "mirror", ...base, ...(endpoint !== undefined ? { endpoint } : {}), result: "failure", message });
      if (target === undefined || target.endpoints.length === 0) {
        failed(`no endpoints for mirror destination "${policy.destination}"`);
      } else {
        const ep = target.balancer.pick(candidatesFor(target.endpoints, new Set()), deps.random);
        const url = new URL(req.url);
        url.host = `${url.hostname}-shadow${url.port === "" ? "" : `:${url.port}`}`;
        const ms = target.policy.route.timeoutMs > 0 ? target.policy.route.timeoutMs : MIRROR_TIMEOUT_MS;
        const signal = deps.clock.timeout(ms);
        const headers = new Headers(req.headers);
        if (headers.has("host")) headers.set("host", url.host);
        try {
          const copy = attemptRequest(new Request(url, { method: req.method, headers }), ctx.body, signal);
          deps.send(copy, ep.endpoint, { signal, tls: target.policy.route.tls.mode }).then(
            (res) => {
              discardResponse(res);
              deps.onEvent?.({ type: "mirror", ...base, endpoint: ep.address, result: "success", status: res.status });
            },
            (e: unknown) => failed(e instanceof Error ? e.message : String(e), ep.address),
          );
        } catch (e) {
          failed(e instanceof Error ? e.message : String(e), ep.address);
        }
      }
    }
    return next(req, ctx);
  };
}
