// Retry-budget stage: each request reaching the retry stage deposits into its destination's
// budget (Linkerd's retryBudget, on by default); the retry stage asks withdrawRetry() before
// every retry, and a refused retry is not sent: the last attempt's answer goes back.
// The budget bounds the load retries add to the destination, so a retry is free while
// no attempt of the request has left this sidecar (an injected fault abort, see fault.ts).

import type { Clock } from "../clock.ts";
import { DEFAULT_RETRY_BUDGET } from "../policy/defaults.ts";
import type { RetryBudget } from "../policy/types.ts";
import { TpsBudget } from "../retry/budget.ts";
import type { LimitSink } from "./circuit-breaker.ts";
import type { RequestContext, Stage } from "./context.ts";
import { destinationOf } from "./context.ts";

interface Account {
  budget: TpsBudget;
  clock: Clock;
  destination: string;
  onLimit: LimitSink | undefined;
  /** An attempt of this request reached the upstream. */
  sent: boolean;
}

const budgets = new WeakMap<RequestContext, Account>();

const sameBudget = (a: Readonly<RetryBudget>, b: Readonly<RetryBudget>) =>
  a.retryRatio === b.retryRatio && a.minRetriesPerSecond === b.minRetriesPerSecond && a.ttlMs === b.ttlMs;

export function retryBudget(deps: { clock: Clock; onLimit?: LimitSink }): Stage {
  // Per destination (rules share it), kept across config swaps that keep the same budget.
  const byDestination = new Map<string, TpsBudget>();
  return (next) => (req, ctx) => {
    const destination = destinationOf(ctx);
    const config = destination.policy.retryBudget ?? DEFAULT_RETRY_BUDGET;
    let budget = byDestination.get(destination.name);
    if (budget === undefined || !sameBudget(budget.config, config)) byDestination.set(destination.name, (budget = new TpsBudget(config)));
    budget.deposit(deps.clock.now());
    budgets.set(ctx, { budget, clock: deps.clock, destination: destination.name, onLimit: deps.onLimit, sent: false });
    return next(req, ctx);
  };
}

/**
 * Whether retry number `attempt` (the attempt about to be made, 2 for the first retry)
 * may be sent; takes it from the budget if so. A request that did not pass the budget
 * stage, or none of whose attempts reached the upstream yet, is not limited.
 */
export function withdrawRetry(ctx: RequestContext, attempt: number): boolean {
  const b = budgets.get(ctx);
  if (b === undefined || !b.sent || b.budget.withdraw(b.clock.now())) return true;
  b.onLimit?.({ type: "retry-budget-exhausted", requestId: ctx.requestId, destination: b.destination, attempt });
  return false;
}

/** Just above the endpoint stage: notes that an attempt of the request goes to the upstream. */
export function upstreamAttempt(): Stage {
  return (next) => (req, ctx) => {
    const b = budgets.get(ctx);
    if (b !== undefined) b.sent = true;
    return next(req, ctx);
  };
}
