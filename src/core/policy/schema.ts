// The policy document as operators write it (snake_case YAML with Istio/Envoy names),
// and the valibot schema that checks it field by field. Defaults and rules that span
// fields are applied afterwards, in parse.ts.

import * as v from "valibot";
import { describeValue, durationField, intField, oneOf, suggest } from "../validation.ts";
import type { LoadBalancer, RetryOn } from "./types.ts";
import {
  faultSchema,
  headerEditsSchema,
  matchSchema,
  nameField,
  percentField,
  rateLimitSchema,
  rewriteSchema,
  splitSchema,
  subsetsSchema,
} from "./traffic-schema.ts";
import type { FaultDocument, HeaderEditsDocument, MatchDocument, RateLimitDocument, SubsetDocument } from "./traffic-schema.ts";
import { circuitBreakersSchema, retryBudgetSchema } from "./limits.ts";
import type { CircuitBreakersDocument, RetryBudgetDocument } from "./limits.ts";

/** A duration as written: "250ms", "30s", "1m30s", or 0. */
export type DurationText = string | number;

/** The document form of a policy, exactly as written in policies/*.yaml. */
export interface PolicyDocument {
  route: {
    /** Logical destination name (DNS-label style), e.g. "payments"; not an address. */
    destination: string;
    /** Per destination. Default round_robin. */
    load_balancer?: LoadBalancer;
    /** Per request, covering every attempt and back-off. Default 15s; 0 disables it. */
    timeout?: DurationText;
    /** Absent: Istio's default (2 retries on connect-failure, refused-stream, 503). Empty: the same. */
    retry_policy?: RetryPolicyDocument | null;
    /** Per request: bodies up to this many bytes are buffered for replay. Default 65536. */
    retry_buffer_bytes?: number;
    /** Outbound TLS origination (Istio DestinationRule names). */
    tls?: { mode?: TlsModeText } | null;
    /** Per caller sidecar, for the whole destination: a token bucket; over it, 429. */
    rate_limit?: RateLimitDocument;
    /** Traffic rules, first match wins; a rule without `match` takes every request. */
    rules?: RuleDocument[];
  };
  /** Absent: no outlier detection. Present (even empty): Envoy's defaults. */
  outlier_detection?: OutlierDocument | null;
  /** Groups of endpoints by label, for rules' `split` (Istio DestinationRule subsets). */
  subsets?: SubsetDocument[];
  /** Per caller sidecar and destination. Absent, null or empty: Linkerd's defaults (0.2, 10/s, 10s); always on. */
  retry_budget?: RetryBudgetDocument | null;
  /** Per caller sidecar and destination. Absent: Envoy's defaults (1024 each). */
  circuit_breakers?: CircuitBreakersDocument | null;
}

/** One traffic rule (Istio VirtualService http route); see docs/policy.md. */
export interface RuleDocument {
  /** Unique within the route; default rule-<index>. */
  name?: string;
  /** Any one of these matches (OR); absent: every request. */
  match?: MatchDocument[];
  split?: { subset?: string; weight: number }[];
  request_headers?: HeaderEditsDocument;
  response_headers?: HeaderEditsDocument;
  rewrite?: { path?: string; path_prefix?: string };
  /** Overrides route.timeout. */
  timeout?: DurationText;
  /** Overrides route.retry_policy. */
  retry_policy?: RetryPolicyDocument | null;
  fault?: FaultDocument;
  mirror?: { destination: string; percent?: number };
  rate_limit?: RateLimitDocument;
}

export interface RetryPolicyDocument {
  /** Comma-separated or a list, Envoy's vocabulary. Default connect-failure,refused-stream,retriable-status-codes. */
  retry_on?: string | string[];
  /** Per request: retries, not attempts. Default 2; 0 turns retries off. */
  num_retries?: number;
  /** Per attempt. Unset: each attempt is bounded only by the route timeout. */
  per_try_timeout?: DurationText;
  /** Statuses retried under retriable-status-codes. Default [503] when retry_on is unset. */
  retriable_status_codes?: number[];
  /** Fully jittered exponential back-off between retries. */
  retry_back_off?: { base_interval?: DurationText; max_interval?: DurationText } | null;
}

export interface OutlierDocument {
  /** Per endpoint: consecutive 5xx or local failures before ejection. Default 5. */
  consecutive_5xx?: number;
  /** Per endpoint: consecutive 502/503/504 or local failures before ejection. Default 5. */
  consecutive_gateway_failure?: number;
  /** Sweep period that returns ejected endpoints. Default 10s. */
  interval?: DurationText;
  /** Ejection time, multiplied by the endpoint's ejection count. Default 30s. */
  base_ejection_time?: DurationText;
  /** Cap on one ejection. Default 300s, or base_ejection_time if larger. */
  max_ejection_time?: DurationText;
  /** Per destination, percent of endpoints that may be ejected at once (at least one always may). Default 10. */
  max_ejection_percent?: number;
}

export type TlsModeText = "ISTIO_MUTUAL" | "MUTUAL" | "SIMPLE" | "DISABLE";

export const LOAD_BALANCERS = ["round_robin", "least_request", "random"] as const satisfies readonly LoadBalancer[];

export const RETRY_ON_VALUES = [
  "5xx",
  "gateway-error",
  "connect-failure",
  "reset",
  "refused-stream",
  "retriable-4xx",
  "retriable-status-codes",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
] as const satisfies readonly RetryOn[];

export const TLS_MODES = ["ISTIO_MUTUAL", "MUTUAL", "SIMPLE", "DISABLE"] as const satisfies readonly TlsModeText[];

// A DNS name made of RFC 1123 labels, lowercase: what a logical service name may be.
const DESTINATION = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;

const destinationField = v.pipe(
  v.string((issue) => `expected a destination name but got ${describeValue(issue.input)}`),
  v.check(
    (s) => DESTINATION.test(s),
    (issue) => `${describeValue(issue.input)} is not a valid destination name, use lowercase letters, digits, "-" and "."`,
  ),
);

const isRetryOn = (s: string): s is RetryOn => (RETRY_ON_VALUES as readonly string[]).includes(s);

// "connect-failure,5xx,reset" or a YAML list; each value must be one Envoy defines and remora implements.
const retryOnField = v.pipe(
  v.union(
    [v.string(), v.array(v.string())],
    (issue) => `expected retry conditions like "connect-failure,5xx" but got ${describeValue(issue.input)}`,
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const raw = dataset.value;
    const values = (typeof raw === "string" ? raw.split(",") : raw).map((s) => s.trim()).filter((s) => s !== "");
    if (values.length === 0) {
      addIssue({ message: "names no retry condition, set num_retries: 0 to turn retries off" });
      return NEVER;
    }
    const out: RetryOn[] = [];
    for (const value of values) {
      if (!isRetryOn(value)) {
        const hint = suggest(value, RETRY_ON_VALUES);
        addIssue({
          message:
            hint === undefined
              ? `"${value}" is not a retry condition remora supports, expected one of ${RETRY_ON_VALUES.join(", ")}`
              : `"${value}" is not a retry condition, did you mean "${hint}"?`,
        });
        return NEVER;
      }
      if (!out.includes(value)) out.push(value);
    }
    return out;
  }),
);

const retryBackOffSchema = v.strictObject({
  base_interval: v.optional(durationField({ positive: true })),
  max_interval: v.optional(durationField({ positive: true })),
});

const retryPolicySchema = v.strictObject({
  retry_on: v.optional(retryOnField),
  num_retries: v.optional(intField(0)),
  per_try_timeout: v.optional(durationField({ positive: true })),
  retriable_status_codes: v.optional(
    v.array(intField(100, 599), (issue) => `expected a list of status codes but got ${describeValue(issue.input)}`),
  ),
  retry_back_off: v.optional(v.nullable(retryBackOffSchema)),
});

const tlsSchema = v.strictObject({
  mode: v.optional(oneOf(TLS_MODES, "a TLS mode")),
});

const outlierSchema = v.strictObject({
  consecutive_5xx: v.optional(intField(1)),
  consecutive_gateway_failure: v.optional(intField(1)),
  interval: v.optional(durationField({ positive: true })),
  base_ejection_time: v.optional(durationField({ positive: true })),
  max_ejection_time: v.optional(durationField({ positive: true })),
  max_ejection_percent: v.optional(intField(0, 100)),
});

const routeSchema = v.strictObject({
  destination: destinationField,
  load_balancer: v.optional(oneOf(LOAD_BALANCERS, "a load balancer")),
  timeout: v.optional(durationField()),
  retry_policy: v.optional(v.nullable(retryPolicySchema)),
  retry_buffer_bytes: v.optional(intField(0)),
  tls: v.optional(v.nullable(tlsSchema)),
  rate_limit: v.optional(rateLimitSchema),
  rules: v.optional(
    v.array(
      v.strictObject({
        name: v.optional(nameField),
        match: v.optional(v.array(matchSchema, (issue) => `expected a list of matches but got ${describeValue(issue.input)}`)),
        split: v.optional(splitSchema),
        request_headers: v.optional(headerEditsSchema),
        response_headers: v.optional(headerEditsSchema),
        rewrite: v.optional(rewriteSchema),
        timeout: v.optional(durationField()),
        retry_policy: v.optional(v.nullable(retryPolicySchema)),
        fault: v.optional(faultSchema),
        mirror: v.optional(v.strictObject({ destination: destinationField, percent: v.optional(percentField) })),
        rate_limit: v.optional(rateLimitSchema),
      }),
      (issue) => `expected a list of rules but got ${describeValue(issue.input)}`,
    ),
  ),
});

/** Checks a policy document; durations come out in ms and retry_on as a list. */
export const policyDocumentSchema = v.strictObject({
  route: routeSchema,
  outlier_detection: v.optional(v.nullable(outlierSchema)),
  subsets: v.optional(subsetsSchema),
  retry_budget: v.optional(v.nullable(retryBudgetSchema)),
  circuit_breakers: v.optional(v.nullable(circuitBreakersSchema)),
});

/** A document that passed the schema, before defaults. */
export type CheckedPolicyDocument = v.InferOutput<typeof policyDocumentSchema>;

// The hand-written PolicyDocument (readable, documented) and the schema's input type
// must stay the same type: each is assigned to the other here.
const toInput = (d: PolicyDocument): v.InferInput<typeof policyDocumentSchema> => d;
const fromInput = (d: v.InferInput<typeof policyDocumentSchema>): PolicyDocument => d;
void toInput;
void fromInput;
