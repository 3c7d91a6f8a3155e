// Match stage: picks the first of route.rules whose match the request satisfies (Istio
// VirtualService order; Gateway API HTTPRoute), and lets the rest of the request see the
// rule's timeout and retry policy in place of the destination's.

import type { RequestMatch, RouteRule, ValueMatch } from "../policy/types.ts";
import type { RequestContext, Stage } from "./context.ts";
import { destinationOf } from "./context.ts";
import type { Destination } from "./destination.ts";
import { localReply } from "./local-reply.ts";

/** The rule a request took and which of its matches selected it (undefined: a rule without match). */
export interface Routed {
  rule: RouteRule;
  matched?: RequestMatch;
}

const routedRequests = new WeakMap<RequestContext, Routed>();

/** The rule the match stage chose for this request; undefined when the destination has no rules. */
export function routedOf(ctx: RequestContext): Routed | undefined {
  return routedRequests.get(ctx);
}

const regexCache = new Map<string, RegExp>();

/** Envoy's safe_regex and Istio's regex match the whole value, not a part of it. */
function fullRegex(pattern: string): RegExp {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    re = new RegExp(`^(?:${pattern})$`);
    regexCache.set(pattern, re);
  }
  return re;
}

export function valueMatches(m: ValueMatch, value: string | null): boolean {
  if (value === null) return false;
  switch (m.kind) {
    case "present":
      return true;
    case "exact":
      return value === m.value;
    case "prefix":
      return value.startsWith(m.value);
    case "regex":
      return fullRegex(m.value).test(value);
  }
}

/** Whether every header condition holds; header names in `conditions` are lowercase. */
export function headersMatch(conditions: Readonly<Record<string, ValueMatch>>, headers: Headers): boolean {
  for (const [name, m] of Object.entries(conditions)) if (!valueMatches(m, headers.get(name))) return false;
  return true;
}

/** Whether `req` satisfies every condition of `m` (an empty match takes everything). */
export function requestMatches(m: RequestMatch, req: Request, url: URL): boolean {
  if (m.method !== undefined && req.method.toUpperCase() !== m.method) return false;
  if (m.path !== undefined && !valueMatches(m.path, url.pathname)) return false;
  if (m.headers !== undefined && !headersMatch(m.headers, req.headers)) return false;
  if (m.queryParams !== undefined) {
    for (const [name, q] of Object.entries(m.queryParams)) if (!valueMatches(q, url.searchParams.get(name))) return false;
  }
  return true;
}

/** The first rule `req` matches, in order; a rule with no match takes every request. */
export function selectRule(rules: readonly RouteRule[], req: Request): Routed | undefined {
  const url = new URL(req.url);
  for (const rule of rules) {
    if (rule.match.length === 0) return { rule };
    const matched = rule.match.find((m) => requestMatches(m, req, url));
    if (matched !== undefined) return { rule, matched };
  }
  return undefined;
}

const views = new WeakMap<Destination, Map<RouteRule, Destination>>();

/**
 * The destination as a rule sees it: the rule's timeout and retry policy in place of the
 * route's. Cached per table snapshot, so a request allocates nothing for it.
 */
export function ruleView(destination: Destination, rule: RouteRule): Destination {
  if (rule.timeoutMs === undefined && rule.retry === undefined) return destination;
  let byRule = views.get(destination);
  if (byRule === undefined) views.set(destination, (byRule = new Map()));
  let view = byRule.get(rule);
  if (view === undefined) {
    const route = destination.policy.route;
    const policy = { ...destination.policy, route: { ...route, timeoutMs: rule.timeoutMs ?? route.timeoutMs, retry: rule.retry ?? route.retry } };
    view = { ...destination, policy };
    byRule.set(rule, view);
  }
  return view;
}

export function match(): Stage {
  return (next) => (req, ctx) => {
    const destination = destinationOf(ctx);
    const rules = destination.policy.route.rules;
    if (rules === undefined) return next(req, ctx);
    const routed = selectRule(rules, req);
    if (routed === undefined) {
      // Envoy answers a request no route matches with 404 (response flag NR).
      return Promise.resolve(localReply(404, `remora: no rule of destination "${destination.name}" matches ${req.method} ${new URL(req.url).pathname}`));
    }
    routedRequests.set(ctx, routed);
    ctx.destination = ruleView(destination, routed.rule);
    return next(req, ctx);
  };
}
