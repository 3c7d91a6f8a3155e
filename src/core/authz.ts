// Authorization by identity: which SPIFFE IDs may call a destination, on which methods
// and paths (docs/control-api.md "Authorization documents"), checked by the callee's sidecar.

import * as v from "valibot";
import { parseSpiffeId } from "./identity/spiffe-id.ts";
import { describeValue, validate } from "./validation.ts";
import type { ValidateOptions } from "./validation.ts";

export interface AuthorizationRule {
  /** Exact SPIFFE IDs, or "spiffe://<td>/*" for every workload of a trust domain. */
  from: string[];
  /** Upper-case HTTP methods; absent: any method. */
  methods?: string[];
  /** Exact paths, or a prefix ending in "*"; absent: any path. */
  paths?: string[];
}

export interface Authorization {
  destination: string;
  allow: AuthorizationRule[];
}

export interface Caller {
  /** The verified SPIFFE ID (mTLS); absent for a plaintext caller. */
  identity?: string;
  method: string;
  /** The URL path, without the query. */
  path: string;
}

export interface Verdict {
  allowed: boolean;
  reason?: string;
}

function isPrincipal(s: string): boolean {
  try {
    // A trust-domain wildcard is the trust domain's own ID with "/*" added.
    parseSpiffeId(s.endsWith("/*") ? s.slice(0, -2) : s);
    return true;
  } catch {
    return false;
  }
}

const principal = v.pipe(
  v.string((i) => `expected a SPIFFE ID but got ${describeValue(i.input)}`),
  v.check(isPrincipal, (i) => `${describeValue(i.input)} is not a SPIFFE ID (spiffe://<trust-domain>/<path>, or spiffe://<trust-domain>/* for a whole trust domain)`),
);

// RFC 9110 §5.6.2 token characters.
const method = v.pipe(
  v.string((i) => `expected an HTTP method but got ${describeValue(i.input)}`),
  v.regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, (i) => `${describeValue(i.input)} is not an HTTP method`),
  v.transform((m) => m.toUpperCase()),
);

const path = v.pipe(
  v.string((i) => `expected a path but got ${describeValue(i.input)}`),
  v.check((p) => p.startsWith("/"), (i) => `${describeValue(i.input)} must start with "/"`),
  v.check((p) => !p.slice(0, -1).includes("*"), (i) => `${describeValue(i.input)} may hold "*" only at its end (a prefix match)`),
);

const nonEmpty = <T extends v.GenericSchema>(item: T, what: string) =>
  v.pipe(
    v.array(item, (i) => `expected a list of ${what} but got ${describeValue(i.input)}`),
    v.minLength(1, `must list at least one ${what.replace(/s$/, "")}`),
  );

const ruleSchema = v.strictObject({
  from: nonEmpty(principal, "SPIFFE IDs"),
  methods: v.optional(nonEmpty(method, "methods")),
  paths: v.optional(nonEmpty(path, "paths")),
});

export const authorizationDocumentSchema = v.strictObject({
  authorization: v.strictObject({
    destination: v.pipe(
      v.string(),
      v.regex(/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/, (i) => `${describeValue(i.input)} is not a service name (lowercase letters, digits and "-")`),
    ),
    // An empty list would deny everyone; that is written as a rule nobody matches, not by accident.
    allow: v.array(ruleSchema),
  }),
});

export type AuthorizationDocument = v.InferInput<typeof authorizationDocumentSchema>;

/**
 * Checks one authorization document (already parsed from YAML or JSON). Throws a
 * RemoraError(ERR_POLICY_INVALID) naming the field, e.g.
 * `authorization.allow[0].from[1]: "x" is not a SPIFFE ID (...)`.
 */
export function parseAuthorization(doc: unknown, source?: string): Authorization {
  const options: ValidateOptions = { code: "ERR_POLICY_INVALID" };
  if (source !== undefined) options.source = source;
  const checked = validate(authorizationDocumentSchema, doc, options).authorization;
  return {
    destination: checked.destination,
    allow: checked.allow.map((r) => ({
      from: r.from,
      ...(r.methods === undefined ? {} : { methods: r.methods }),
      ...(r.paths === undefined ? {} : { paths: r.paths }),
    })),
  };
}

/** The document form, for showing the active config. */
export function authorizationToDocument(a: Authorization): AuthorizationDocument {
  return { authorization: { destination: a.destination, allow: a.allow.map((r) => ({ ...r })) } };
}

/**
 * No document: every authenticated caller is allowed (the mesh's mTLS already proved who
 * it is). With one: allowed when any rule matches identity, method and path.
 */
/** Shared: a request path calls authorize() per request, and most services have no policy. */
const ALLOWED: Verdict = Object.freeze({ allowed: true });

export function authorize(auth: Authorization | undefined, caller: Caller): Verdict {
  if (auth === undefined) return ALLOWED;
  const who = caller.identity ?? "an unauthenticated caller";
  const denied: Verdict = { allowed: false, reason: `${who} is not allowed to ${caller.method} ${caller.path} on ${auth.destination}` };
  if (caller.identity === undefined) return denied;
  const id = caller.identity;
  const method = caller.method.toUpperCase();
  const matches = auth.allow.some(
    (r) =>
      r.from.some((p) => principalMatches(p, id)) &&
      (r.methods === undefined || r.methods.includes(method)) &&
      (r.paths === undefined || r.paths.some((p) => pathMatches(p, caller.path))),
  );
  return matches ? ALLOWED : denied;
}

function principalMatches(pattern: string, id: string): boolean {
  // "spiffe://td/*" covers every ID whose trust domain is td, never a look-alike such as td.evil.
  if (pattern.endsWith("/*")) return id.startsWith(pattern.slice(0, -1));
  return pattern === id;
}

function pathMatches(pattern: string, path: string): boolean {
  return pattern.endsWith("*") ? path.startsWith(pattern.slice(0, -1)) : pattern === path;
}
