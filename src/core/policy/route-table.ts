// The effective route table of one destination, one row per rule in match order, as
// `remora get routes` and the admin server's GET /routes show it: what a caller's sidecar
// does with a request, defaults applied, and how many endpoints each subset has now.

import { formatDuration } from "../duration.ts";
import type { Endpoint } from "../endpoint.ts";
import type { HeaderEdits, Policy, RequestMatch, RetryPolicy, RouteRule, ValueMatch } from "./types.ts";

export interface RouteRow {
  destination: string;
  /** "(route)" for a destination without rules. */
  rule: string;
  /** "*" matches every request. */
  match: string;
  /** "v1 90% (2 endpoints), v2 10% (1 endpoint)" or "all (3 endpoints)". */
  backends: string;
  timeout: string;
  retries: string;
  /** Header edits, rewrite, fault, mirror and rate limit; "-" when none. */
  actions: string;
}

const value = (m: ValueMatch): string => (m.kind === "present" ? "" : m.kind === "exact" ? `=${m.value}` : m.kind === "prefix" ? `^${m.value}` : `~${m.value}`);

export function describeMatch(m: RequestMatch): string {
  const parts: string[] = [];
  if (m.method !== undefined) parts.push(m.method);
  if (m.path !== undefined) parts.push(m.path.kind === "exact" ? m.path.value : m.path.kind === "prefix" ? `${m.path.value}*` : `~${m.path.value}`);
  for (const [k, v] of Object.entries(m.headers ?? {})) parts.push(`${k}${value(v)}`);
  for (const [k, v] of Object.entries(m.queryParams ?? {})) parts.push(`?${k}${value(v)}`);
  return parts.length === 0 ? "*" : parts.join(" ");
}

const plural = (n: number) => `${n} endpoint${n === 1 ? "" : "s"}`;

function describeRetry(r: RetryPolicy): string {
  return r.numRetries === 0 ? "off" : `${r.numRetries} on ${[...r.retryOn].join(",")}${r.perTryTimeoutMs !== undefined ? ` per try ${formatDuration(r.perTryTimeoutMs)}` : ""}`;
}

function describeEdits(what: string, h: HeaderEdits): string[] {
  return [
    ...Object.entries(h.set).map(([k, v]) => `${what} set ${k}: ${v}`),
    ...Object.entries(h.add).map(([k, v]) => `${what} add ${k}: ${v}`),
    ...h.remove.map((k) => `${what} remove ${k}`),
  ];
}

function describeActions(rule: RouteRule | undefined, policy: Policy): string {
  const out: string[] = [];
  const limit = policy.route.rateLimit;
  if (limit !== undefined) out.push(`destination limit ${limit.requestsPerSecond}/s burst ${limit.burst}`);
  if (rule?.rewrite !== undefined) out.push(`rewrite ${rule.rewrite.kind === "prefix" ? "prefix " : ""}${rule.rewrite.value}`);
  if (rule?.requestHeaders !== undefined) out.push(...describeEdits("request", rule.requestHeaders));
  if (rule?.responseHeaders !== undefined) out.push(...describeEdits("response", rule.responseHeaders));
  const f = rule?.fault;
  if (f?.delay !== undefined) out.push(`delay ${formatDuration(f.delay.ms)} ${f.delay.percent}%`);
  if (f?.abort !== undefined) out.push(`abort ${f.abort.status} ${f.abort.percent}%`);
  if (f?.matchHeaders !== undefined) out.push(`faults only for ${Object.entries(f.matchHeaders).map(([k, v]) => `${k}${value(v)}`).join(" ")}`);
  if (rule?.mirror !== undefined) out.push(`mirror ${rule.mirror.percent}% to ${rule.mirror.destination}`);
  if (rule?.rateLimit !== undefined) out.push(`limit ${rule.rateLimit.requestsPerSecond}/s burst ${rule.rateLimit.burst}`);
  return out.length === 0 ? "-" : out.join("; ");
}

export function routeTable(policy: Policy, endpoints: readonly Endpoint[] = []): RouteRow[] {
  const route = policy.route;
  const all = `all (${plural(endpoints.length)})`;
  const inSubset = (name: string): number => {
    const labels = policy.subsets?.find((s) => s.name === name)?.labels ?? {};
    return endpoints.filter((e) => Object.entries(labels).every(([k, v]) => e.labels?.[k] === v)).length;
  };
  const row = (rule: RouteRule | undefined): RouteRow => {
    const total = rule?.split?.reduce((s, b) => s + b.weight, 0) ?? 0;
    return {
      destination: route.destination,
      rule: rule?.name ?? "(route)",
      match: rule === undefined || rule.match.length === 0 ? "*" : rule.match.map(describeMatch).join(" | "),
      backends:
        rule?.split === undefined
          ? all
          : rule.split
              .map((b) => `${b.subset ?? "all"} ${Math.round((b.weight / total) * 1000) / 10}% (${plural(b.subset === undefined ? endpoints.length : inSubset(b.subset))})`)
              .join(", "),
      timeout: formatDuration(rule?.timeoutMs ?? route.timeoutMs),
      retries: describeRetry(rule?.retry ?? route.retry),
      actions: describeActions(rule, policy),
    };
  };
  return route.rules === undefined ? [row(undefined)] : route.rules.map(row);
}
