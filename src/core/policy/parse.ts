// From a policy document (or a YAML file of them) to the normalised Policy the request
// path uses, and back to the document form for showing the active config.

import { parseYamlDocuments } from "../yaml-doc.ts";
import { formatDuration } from "../duration.ts";
import { RemoraError } from "../errors.ts";
import { invalid, validate } from "../validation.ts";
import type { ValidateOptions } from "../validation.ts";
import {
  BACKOFF_MAX_FACTOR,
  DEFAULT_BACKOFF_BASE_MS,
  DEFAULT_NUM_RETRIES,
  DEFAULT_OUTLIER,
  DEFAULT_RETRIABLE_STATUS_CODES,
  DEFAULT_RETRY_BUFFER_BYTES,
  DEFAULT_RETRY_ON,
  DEFAULT_TIMEOUT_MS,
  defaultRetryPolicy,
} from "./defaults.ts";
import { policyDocumentSchema, RETRY_ON_VALUES } from "./schema.ts";
import type { CheckedPolicyDocument, OutlierDocument, PolicyDocument, RetryPolicyDocument } from "./schema.ts";
import type { OutlierPolicy, Policy, RetryPolicy } from "./types.ts";
import { rateLimit, rateLimitDocument, ruleDocument, rules, subsets } from "./parse-rules.ts";
import { circuitBreakers, circuitBreakersDocument, retryBudget, retryBudgetDocument } from "./limits.ts";

export type { PolicyDocument } from "./schema.ts";
export { defaultPolicy } from "./defaults.ts";

type CheckedRoute = CheckedPolicyDocument["route"];
type CheckedRetry = NonNullable<CheckedRoute["retry_policy"]>;
type CheckedOutlier = NonNullable<CheckedPolicyDocument["outlier_detection"]>;

/**
 * Checks one policy document (already parsed from YAML or JSON) and returns it with
 * every default applied. Throws RemoraError(ERR_POLICY_INVALID) whose message names
 * `source` and the field, e.g. `policies/payments.yaml: route.timeout: "2x" is not a duration`.
 */
export function parsePolicy(doc: unknown, source?: string): Policy {
  const options: ValidateOptions = { code: "ERR_POLICY_INVALID" };
  if (source !== undefined) options.source = source;
  const checked = validate(policyDocumentSchema, doc, options);
  const route = checked.route;
  const timeoutMs = route.timeout ?? DEFAULT_TIMEOUT_MS;
  const policy: Policy = {
    route: {
      destination: route.destination,
      loadBalancer: route.load_balancer ?? "round_robin",
      retry: route.retry_policy === undefined ? defaultRetryPolicy() : retryPolicy(route.retry_policy ?? {}, timeoutMs, "route.retry_policy", options),
      timeoutMs,
      // ISTIO_MUTUAL means "mTLS with the mesh-issued SVID", which is the only MUTUAL remora has.
      tls: { mode: route.tls?.mode === undefined || route.tls.mode === "ISTIO_MUTUAL" ? "MUTUAL" : route.tls.mode },
      retryBufferBytes: route.retry_buffer_bytes ?? DEFAULT_RETRY_BUFFER_BYTES,
    },
  };
  if (checked.outlier_detection !== undefined) {
    policy.outlier = outlierPolicy(checked.outlier_detection ?? {}, options);
  }
  // Traffic management (route.rules and friends) only appears in the model when written,
  // so a policy without it is exactly what it was before rules existed.
  const subsetList = subsets(checked.subsets ?? [], options);
  if (checked.subsets !== undefined) policy.subsets = subsetList;
  if (route.rate_limit !== undefined) policy.route.rateLimit = rateLimit(route.rate_limit);
  if (route.rules !== undefined) {
    policy.route.rules = rules(route.rules, { routeTimeoutMs: timeoutMs, subsets: subsetList, retry: retryPolicy, options });
  }
  // Like rules: only in the model when written; the request path applies the defaults.
  if (checked.retry_budget !== undefined) policy.retryBudget = retryBudget(checked.retry_budget ?? {}, options);
  if (checked.circuit_breakers !== undefined) policy.circuitBreakers = circuitBreakers(checked.circuit_breakers ?? {});
  return policy;
}

function retryPolicy(r: CheckedRetry, timeoutMs: number, at: string, options: ValidateOptions): RetryPolicy {
  const retryOn = r.retry_on ?? DEFAULT_RETRY_ON;
  // Istio's default conditions come with its default status list; an explicit retry_on does not.
  const codes = [...new Set(r.retriable_status_codes ?? (r.retry_on === undefined ? DEFAULT_RETRIABLE_STATUS_CODES : []))];
  const wantsCodes = retryOn.includes("retriable-status-codes");
  // Envoy silently ignores either half without the other; an operator would rather know.
  if (codes.length > 0 && !wantsCodes) {
    invalid(`${at}.retriable_status_codes`, "has no effect unless retry_on includes retriable-status-codes", options);
  }
  if (wantsCodes && codes.length === 0) {
    invalid(`${at}.retry_on`, "includes retriable-status-codes but retriable_status_codes lists no status", options);
  }
  // Envoy rounds sub-millisecond back-off intervals up to 1 ms.
  const baseMs = Math.ceil(r.retry_back_off?.base_interval ?? DEFAULT_BACKOFF_BASE_MS);
  const maxMs = Math.ceil(r.retry_back_off?.max_interval ?? baseMs * BACKOFF_MAX_FACTOR);
  if (maxMs < baseMs) {
    invalid(`${at}.retry_back_off.max_interval`, `${formatDuration(maxMs)} is less than base_interval ${formatDuration(baseMs)}`, options);
  }
  const out: RetryPolicy = {
    retryOn: new Set(retryOn),
    numRetries: r.num_retries ?? DEFAULT_NUM_RETRIES,
    retriableStatusCodes: codes,
    backoff: { baseMs, maxMs },
  };
  // Envoy ignores a per-try timeout that is not below a non-zero route timeout
  // (router_filter.rst, x-envoy-upstream-rq-per-try-timeout-ms); dropping it here means
  // the retry stage never has to know that rule.
  if (r.per_try_timeout !== undefined && (timeoutMs === 0 || r.per_try_timeout < timeoutMs)) {
    out.perTryTimeoutMs = r.per_try_timeout;
  }
  return out;
}

function outlierPolicy(o: CheckedOutlier, options: ValidateOptions): OutlierPolicy {
  const baseEjectionMs = o.base_ejection_time ?? DEFAULT_OUTLIER.baseEjectionMs;
  // Envoy: max_ejection_time defaults to 300 s or base_ejection_time if larger, and
  // refuses an explicit max below base.
  const maxEjectionMs = o.max_ejection_time ?? Math.max(DEFAULT_OUTLIER.maxEjectionMs, baseEjectionMs);
  if (maxEjectionMs < baseEjectionMs) {
    invalid(
      "outlier_detection.max_ejection_time",
      `${formatDuration(maxEjectionMs)} is less than base_ejection_time ${formatDuration(baseEjectionMs)}`,
      options,
    );
  }
  return {
    consecutive5xx: o.consecutive_5xx ?? DEFAULT_OUTLIER.consecutive5xx,
    consecutiveGatewayFailure: o.consecutive_gateway_failure ?? DEFAULT_OUTLIER.consecutiveGatewayFailure,
    intervalMs: o.interval ?? DEFAULT_OUTLIER.intervalMs,
    baseEjectionMs,
    maxEjectionMs,
    maxEjectionPercent: o.max_ejection_percent ?? DEFAULT_OUTLIER.maxEjectionPercent,
  };
}

/**
 * Parses a YAML file of one or more policy documents separated by `---` (empty
 * documents are skipped). YAML syntax errors become one sentence with file, line and
 * column; a destination defined twice is an error.
 */
export function parsePolicies(yamlText: string, source?: string): Policy[] {
  const docs = parseYamlDocuments(yamlText, source, "ERR_POLICY_INVALID");
  const policies: Policy[] = [];
  const seen = new Map<string, number>();
  docs.forEach((doc, i) => {
    const label = docs.length > 1 ? `${source ?? "policy"} (document ${i + 1})` : source;
    const policy = parsePolicy(doc, label);
    const earlier = seen.get(policy.route.destination);
    if (earlier !== undefined) {
      throw new RemoraError(
        "ERR_POLICY_INVALID",
        `${label ?? "policy"}: route.destination: "${policy.route.destination}" is already defined by document ${earlier}`,
      );
    }
    seen.set(policy.route.destination, i + 1);
    policies.push(policy);
  });
  return policies;
}

/**
 * The document form of a normalised policy, every default written out and durations
 * as text, so `remora` can show what is in force. parsePolicy(policyToDocument(p))
 * equals p.
 */
export function policyToDocument(p: Policy): PolicyDocument {
  const r = p.route;
  const doc: PolicyDocument = {
    route: {
      destination: r.destination,
      load_balancer: r.loadBalancer,
      timeout: formatDuration(r.timeoutMs),
      retry_policy: retryDocument(r.retry),
      retry_buffer_bytes: r.retryBufferBytes,
      tls: { mode: r.tls.mode },
    },
  };
  if (r.rateLimit !== undefined) doc.route.rate_limit = rateLimitDocument(r.rateLimit);
  if (r.rules !== undefined) doc.route.rules = r.rules.map((rule) => ruleDocument(rule, retryDocument));
  if (p.subsets !== undefined) doc.subsets = p.subsets.map((s) => ({ name: s.name, labels: { ...s.labels } }));
  if (p.outlier !== undefined) {
    const o = p.outlier;
    const outlier: OutlierDocument = {
      consecutive_5xx: o.consecutive5xx,
      consecutive_gateway_failure: o.consecutiveGatewayFailure,
      interval: formatDuration(o.intervalMs),
      base_ejection_time: formatDuration(o.baseEjectionMs),
      max_ejection_time: formatDuration(o.maxEjectionMs),
      max_ejection_percent: o.maxEjectionPercent,
    };
    doc.outlier_detection = outlier;
  }
  if (p.retryBudget !== undefined) doc.retry_budget = retryBudgetDocument(p.retryBudget);
  if (p.circuitBreakers !== undefined) doc.circuit_breakers = circuitBreakersDocument(p.circuitBreakers);
  return doc;
}

function retryDocument(policy: RetryPolicy): RetryPolicyDocument {
  const retry: RetryPolicyDocument = {
    // Canonical order, so the same policy always prints the same way.
    retry_on: RETRY_ON_VALUES.filter((c) => policy.retryOn.has(c)).join(","),
    num_retries: policy.numRetries,
  };
  if (policy.perTryTimeoutMs !== undefined) retry.per_try_timeout = formatDuration(policy.perTryTimeoutMs);
  if (policy.retryOn.has("retriable-status-codes")) retry.retriable_status_codes = [...policy.retriableStatusCodes];
  retry.retry_back_off = {
    base_interval: formatDuration(policy.backoff.baseMs),
    max_interval: formatDuration(policy.backoff.maxMs),
  };
  return retry;
}
