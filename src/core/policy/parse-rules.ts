// From the checked traffic parts of a policy document (route.rules, rate limits, subsets)
// to the normalised model, with the rules that span fields (split weights, subset names,
// unique rule names) reported by field path; and back to the document form.

import { formatDuration } from "../duration.ts";
import { invalid, type ValidateOptions } from "../validation.ts";
import type { CheckedPolicyDocument, RetryPolicyDocument, RuleDocument } from "./schema.ts";
import type { HeaderEditsDocument, MatchDocument, RateLimitDocument, SubsetDocument, ValueMatchDocument } from "./traffic-schema.ts";
import type { HeaderEdits, RateLimit, RequestMatch, RetryPolicy, RouteRule, Subset, ValueMatch } from "./types.ts";

type CheckedRoute = CheckedPolicyDocument["route"];
type CheckedRule = NonNullable<CheckedRoute["rules"]>[number];
type CheckedRetry = NonNullable<CheckedRule["retry_policy"]>;
type CheckedMatch = NonNullable<CheckedRule["match"]>[number];
type CheckedValueMatch = ValueMatchDocument;
type CheckedHeaderEdits = NonNullable<CheckedRule["request_headers"]>;

/** Builds a RetryPolicy from a checked retry_policy block; `at` is its field path. */
export type RetryBuilder = (r: CheckedRetry, timeoutMs: number, at: string, options: ValidateOptions) => RetryPolicy;

export function rateLimit(r: RateLimitDocument): RateLimit {
  // Envoy's local rate limit needs a bucket of at least one token.
  return { requestsPerSecond: r.requests_per_second, burst: r.burst ?? Math.max(1, Math.ceil(r.requests_per_second)) };
}

export function subsets(list: readonly SubsetDocument[], options: ValidateOptions): Subset[] {
  const seen = new Set<string>();
  return list.map((s, i) => {
    if (seen.has(s.name)) invalid(`subsets[${i}].name`, `"${s.name}" is defined twice`, options);
    seen.add(s.name);
    return { name: s.name, labels: { ...s.labels } };
  });
}

export function rules(
  list: readonly CheckedRule[],
  ctx: { routeTimeoutMs: number; subsets: readonly Subset[]; retry: RetryBuilder; options: ValidateOptions },
): RouteRule[] {
  const names = new Set<string>();
  return list.map((r, i) => {
    const at = `route.rules[${i}]`;
    const name = r.name ?? `rule-${i}`;
    if (names.has(name)) invalid(`${at}.name`, `"${name}" is already the name of an earlier rule`, ctx.options);
    names.add(name);
    const rule: RouteRule = { name, match: (r.match ?? []).map(requestMatch) };
    if (r.split !== undefined) {
      if (r.split.length === 0) invalid(`${at}.split`, "lists no subset, leave split out to use every endpoint", ctx.options);
      if (r.split.every((s) => s.weight === 0)) invalid(`${at}.split`, "weights must add up to more than 0", ctx.options);
      r.split.forEach((s, j) => {
        if (s.subset !== undefined && !ctx.subsets.some((d) => d.name === s.subset)) {
          invalid(`${at}.split[${j}].subset`, `"${s.subset}" is not defined under subsets`, ctx.options);
        }
      });
      rule.split = r.split.map((s) => (s.subset === undefined ? { weight: s.weight } : { subset: s.subset, weight: s.weight }));
    }
    if (r.request_headers !== undefined) rule.requestHeaders = headerEdits(r.request_headers);
    if (r.response_headers !== undefined) rule.responseHeaders = headerEdits(r.response_headers);
    if (r.rewrite !== undefined) {
      rule.rewrite = r.rewrite.path !== undefined ? { kind: "path", value: r.rewrite.path } : { kind: "prefix", value: r.rewrite.path_prefix ?? "/" };
    }
    if (r.timeout !== undefined) rule.timeoutMs = r.timeout;
    if (r.retry_policy !== undefined) {
      rule.retry = ctx.retry(r.retry_policy ?? {}, rule.timeoutMs ?? ctx.routeTimeoutMs, `${at}.retry_policy`, ctx.options);
    }
    if (r.fault !== undefined) {
      const f = r.fault;
      rule.fault = {
        ...(f.delay !== undefined ? { delay: { ms: f.delay.fixed, percent: f.delay.percent ?? 100 } } : {}),
        ...(f.abort !== undefined ? { abort: { status: f.abort.status, percent: f.abort.percent ?? 100 } } : {}),
        ...(f.match_headers !== undefined ? { matchHeaders: valueMap(f.match_headers, true) } : {}),
      };
    }
    if (r.mirror !== undefined) rule.mirror = { destination: r.mirror.destination, percent: r.mirror.percent ?? 100 };
    if (r.rate_limit !== undefined) rule.rateLimit = rateLimit(r.rate_limit);
    return rule;
  });
}

function valueMatch(m: CheckedValueMatch): ValueMatch {
  if (m.exact !== undefined) return { kind: "exact", value: m.exact };
  if (m.prefix !== undefined) return { kind: "prefix", value: m.prefix };
  if (m.regex !== undefined) return { kind: "regex", value: m.regex };
  return { kind: "present", value: "" };
}

/** Header names are case-insensitive (RFC 9110), so they are kept lowercase. */
function valueMap(map: Readonly<Record<string, CheckedValueMatch>>, lowercase: boolean): Record<string, ValueMatch> {
  return Object.fromEntries(Object.entries(map).map(([k, m]) => [lowercase ? k.toLowerCase() : k, valueMatch(m)]));
}

function requestMatch(m: CheckedMatch): RequestMatch {
  const out: RequestMatch = {};
  if (m.path !== undefined) out.path = valueMatch(m.path);
  if (m.method !== undefined) out.method = m.method.toUpperCase();
  if (m.headers !== undefined) out.headers = valueMap(m.headers, true);
  if (m.query_params !== undefined) out.queryParams = valueMap(m.query_params, false);
  return out;
}

function headerEdits(h: CheckedHeaderEdits): HeaderEdits {
  const lower = (r: Readonly<Record<string, string>> | undefined) => Object.fromEntries(Object.entries(r ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
  return { set: lower(h.set), add: lower(h.add), remove: (h.remove ?? []).map((n) => n.toLowerCase()) };
}

// ---- back to the document form ----

function valueMatchDocument(m: ValueMatch): ValueMatchDocument {
  return m.kind === "present" ? { present: true } : { [m.kind]: m.value };
}

function matchDocument(m: RequestMatch): MatchDocument {
  const out: MatchDocument = {};
  if (m.path !== undefined) out.path = m.path.kind === "present" ? {} : { [m.path.kind]: m.path.value };
  if (m.method !== undefined) out.method = m.method;
  if (m.headers !== undefined) out.headers = mapValues(m.headers, valueMatchDocument);
  if (m.queryParams !== undefined) out.query_params = mapValues(m.queryParams, valueMatchDocument);
  return out;
}

function headerEditsDocument(h: HeaderEdits): HeaderEditsDocument {
  return { set: { ...h.set }, add: { ...h.add }, remove: [...h.remove] };
}

export function rateLimitDocument(r: RateLimit): RateLimitDocument {
  return { requests_per_second: r.requestsPerSecond, burst: r.burst };
}

export function ruleDocument(r: RouteRule, retry: (p: RetryPolicy) => RetryPolicyDocument): RuleDocument {
  const doc: RuleDocument = { name: r.name };
  if (r.match.length > 0) doc.match = r.match.map(matchDocument);
  if (r.split !== undefined) doc.split = r.split.map((s) => ({ ...s }));
  if (r.requestHeaders !== undefined) doc.request_headers = headerEditsDocument(r.requestHeaders);
  if (r.responseHeaders !== undefined) doc.response_headers = headerEditsDocument(r.responseHeaders);
  if (r.rewrite !== undefined) doc.rewrite = r.rewrite.kind === "path" ? { path: r.rewrite.value } : { path_prefix: r.rewrite.value };
  if (r.timeoutMs !== undefined) doc.timeout = formatDuration(r.timeoutMs);
  if (r.retry !== undefined) doc.retry_policy = retry(r.retry);
  if (r.fault !== undefined) {
    const f = r.fault;
    doc.fault = {
      ...(f.delay !== undefined ? { delay: { fixed: formatDuration(f.delay.ms), percent: f.delay.percent } } : {}),
      ...(f.abort !== undefined ? { abort: { status: f.abort.status, percent: f.abort.percent } } : {}),
      ...(f.matchHeaders !== undefined ? { match_headers: mapValues(f.matchHeaders, valueMatchDocument) } : {}),
    };
  }
  if (r.mirror !== undefined) doc.mirror = { destination: r.mirror.destination, percent: r.mirror.percent };
  if (r.rateLimit !== undefined) doc.rate_limit = rateLimitDocument(r.rateLimit);
  return doc;
}

function mapValues<A, B>(r: Readonly<Record<string, A>>, f: (a: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(r).map(([k, a]) => [k, f(a)]));
}
