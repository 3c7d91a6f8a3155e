// The traffic-management parts of a policy document (route.rules, rate limits, subsets)
// as operators write them, in the spirit of Istio's VirtualService and DestinationRule,
// and the valibot schemas that check them field by field. schema.ts assembles them.

import * as v from "valibot";
import { describeValue, durationField, intField } from "../validation.ts";
import type { DurationText } from "./schema.ts";
import { unsafeRegexReason } from "./safe-regex.ts";

/** Exactly one key. Strings compare case-sensitively; `regex` must match the whole value (Envoy's RE2 full match). */
export interface ValueMatchDocument {
  exact?: string;
  prefix?: string;
  regex?: string;
  /** true: the header or parameter is present, whatever its value. */
  present?: true;
}

export interface PathMatchDocument {
  exact?: string;
  prefix?: string;
  regex?: string;
}

export interface MatchDocument {
  path?: PathMatchDocument;
  /** HTTP method, case-insensitive. */
  method?: string;
  /** Header name (case-insensitive) -> how its value must match. */
  headers?: Record<string, ValueMatchDocument>;
  query_params?: Record<string, ValueMatchDocument>;
}

export interface HeaderEditsDocument {
  /** Replaces any value. */
  set?: Record<string, string>;
  /** Appends a value, keeping existing ones. */
  add?: Record<string, string>;
  remove?: string[];
}

export interface RateLimitDocument {
  /** Tokens added per second (may be fractional), per caller sidecar. */
  requests_per_second: number;
  /** Bucket size: requests allowed at once. Default: requests_per_second rounded up. */
  burst?: number;
}

export interface FaultDocument {
  delay?: { fixed: DurationText; percent?: number };
  abort?: { status: number; percent?: number };
  match_headers?: Record<string, ValueMatchDocument>;
}

export interface SubsetDocument {
  name: string;
  labels: Record<string, string>;
}

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A lowercase DNS label: rule and subset names. */
export const nameField = v.pipe(
  v.string((issue) => `expected a name but got ${describeValue(issue.input)}`),
  v.check((s) => NAME.test(s), (issue) => `${describeValue(issue.input)} is not a name, use lowercase letters, digits and "-"`),
);

/** 0-100, fractions allowed (Istio's Percent). */
export const percentField = v.pipe(
  v.number((issue) => `expected a percentage from 0 to 100 but got ${describeValue(issue.input)}`),
  v.check((n) => Number.isFinite(n) && n >= 0 && n <= 100, (issue) => `${describeValue(issue.input)} is not a percentage from 0 to 100`),
);

const isRegex = (s: string): boolean => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
};

const oneKey = <T extends object>(keys: readonly (keyof T & string)[]) =>
  v.check<T, string>(
    (o) => keys.filter((k) => o[k] !== undefined).length === 1,
    `give exactly one of ${keys.join(", ")}`,
  );

const regexText = v.pipe(
  v.string(),
  v.check(isRegex, (issue) => `${describeValue(issue.input)} is not a valid regular expression`),
  v.check((s) => unsafeRegexReason(s) === undefined, (issue) => `${describeValue(issue.input)} is refused: ${unsafeRegexReason(issue.input as string)}`),
);

export const valueMatchSchema = v.pipe(
  v.strictObject({
    exact: v.optional(v.string()),
    prefix: v.optional(v.string()),
    regex: v.optional(regexText),
    present: v.optional(v.literal(true, "must be true (leave it out to not require the header)")),
  }),
  oneKey(["exact", "prefix", "regex", "present"]),
);

const pathText = v.pipe(v.string(), v.startsWith("/", 'must start with "/"'));

export const pathMatchSchema = v.pipe(
  v.strictObject({ exact: v.optional(pathText), prefix: v.optional(pathText), regex: v.optional(regexText) }),
  oneKey(["exact", "prefix", "regex"]),
);

const headerName = v.pipe(v.string(), v.check((s) => HEADER_NAME.test(s), (issue) => `${describeValue(issue.input)} is not a header name`));

const headerMap = v.record(headerName, valueMatchSchema, (issue) => `expected a mapping of names to matches but got ${describeValue(issue.input)}`);

export const matchSchema = v.strictObject({
  path: v.optional(pathMatchSchema),
  method: v.optional(
    v.pipe(v.string(), v.check((s) => /^[A-Za-z]+$/.test(s), (issue) => `${describeValue(issue.input)} is not an HTTP method`)),
  ),
  headers: v.optional(headerMap),
  query_params: v.optional(v.record(v.string(), valueMatchSchema)),
});

export const headerEditsSchema = v.strictObject({
  set: v.optional(v.record(headerName, v.string())),
  add: v.optional(v.record(headerName, v.string())),
  remove: v.optional(v.array(headerName)),
});

export const splitSchema = v.array(
  v.strictObject({
    subset: v.optional(nameField),
    weight: intField(0),
  }),
  (issue) => `expected a list of {subset, weight} but got ${describeValue(issue.input)}`,
);

export const rewriteSchema = v.pipe(
  v.strictObject({ path: v.optional(pathText), path_prefix: v.optional(pathText) }),
  oneKey(["path", "path_prefix"]),
);

export const faultSchema = v.pipe(
  v.strictObject({
    delay: v.optional(v.strictObject({ fixed: durationField({ positive: true }), percent: v.optional(percentField) })),
    abort: v.optional(v.strictObject({ status: intField(200, 599), percent: v.optional(percentField) })),
    match_headers: v.optional(headerMap),
  }),
  v.check((f) => f.delay !== undefined || f.abort !== undefined, "give a delay, an abort or both"),
);

export const rateLimitSchema = v.strictObject({
  requests_per_second: v.pipe(
    v.number((issue) => `expected a number of requests per second but got ${describeValue(issue.input)}`),
    v.check((n) => Number.isFinite(n) && n > 0, (issue) => `${describeValue(issue.input)} must be greater than 0`),
  ),
  burst: v.optional(intField(1)),
});

export const subsetsSchema = v.array(
  v.strictObject({ name: nameField, labels: v.record(v.string(), v.string()) }),
  (issue) => `expected a list of {name, labels} but got ${describeValue(issue.input)}`,
);

// The hand-written document types must stay the schemas' input types: each is assigned
// to the other here.
const sameTypes = [
  (d: v.InferInput<typeof valueMatchSchema>): ValueMatchDocument => d,
  (d: ValueMatchDocument): v.InferInput<typeof valueMatchSchema> => d,
  (d: v.InferInput<typeof matchSchema>): MatchDocument => d,
  (d: MatchDocument): v.InferInput<typeof matchSchema> => d,
  (d: v.InferInput<typeof headerEditsSchema>): HeaderEditsDocument => d,
  (d: HeaderEditsDocument): v.InferInput<typeof headerEditsSchema> => d,
  (d: v.InferInput<typeof rateLimitSchema>): RateLimitDocument => d,
  (d: RateLimitDocument): v.InferInput<typeof rateLimitSchema> => d,
  (d: v.InferInput<typeof faultSchema>): FaultDocument => d,
  (d: FaultDocument): v.InferInput<typeof faultSchema> => d,
  (d: v.InferInput<typeof subsetsSchema>): SubsetDocument[] => d,
  (d: SubsetDocument[]): v.InferInput<typeof subsetsSchema> => d,
];
void sameTypes;
