// An on-demand config answer (`POST /v2/config`, docs/control-api.md) checked one destination
// at a time: a destination whose policy or endpoints are bad is refused whole (the sidecar
// keeps the last good version of it), while the valid destinations of the same answer apply.

import * as v from "valibot";
import type { Authorization } from "../../core/authz.ts";
import type { Endpoint } from "../../core/endpoint.ts";
import type { Policy } from "../../core/policy/types.ts";
import { parseAuthorization } from "../../core/authz.ts";
import { parsePolicy } from "../../core/policy/parse.ts";
import { isSpiffeId } from "../../core/identity/spiffe-id.ts";
import { logicalName } from "../../core/router.ts";
import { describeValue, validate } from "../../core/validation.ts";

/** What the sidecar applies: O(changed) destinations, never the whole mesh. */
export interface DestinationUpdate {
  /** The control plane's state version the answer was cut from. */
  version: string;
  set: Record<string, { policy?: Policy; endpoints: Endpoint[]; vip?: string }>;
  /** Destinations the control plane does not know (any more). */
  remove: string[];
}

export interface ParsedAnswer {
  version: string;
  update: DestinationUpdate;
  /** name -> the version in the answer, refused or not (the next poll names it, so a bad one is not resent at once). */
  seen: Record<string, { version: string; found: boolean }>;
  /** name -> one sentence: why that destination was refused. */
  rejected: Record<string, string>;
  /** Present when the caller's own authorization changed: the document (undefined: none), or why it was refused. */
  authorization?: { version: string; document?: Authorization; error?: string };
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

const resourceSchema = v.object({
  version: v.pipe(v.string(), v.minLength(1, "must not be empty")),
  found: v.boolean(),
  policy: v.optional(v.unknown()),
  endpoints: v.optional(
    v.array(
      v.object({
        address: v.pipe(v.string(), v.check((s) => HOST_PORT.test(s), (i) => `${describeValue(i.input)} is not host:port`)),
        identity: v.optional(v.pipe(v.string(), v.check(isSpiffeId, (i) => `${describeValue(i.input)} is not a SPIFFE ID`))),
        labels: v.optional(v.record(v.string(), v.string())),
      }),
    ),
    [],
  ),
  vip: v.optional(v.pipe(v.string(), v.check((s) => IPV4.test(s), (i) => `${describeValue(i.input)} is not an IPv4 address`))),
});

const answerSchema = v.object({
  version: v.pipe(v.string(), v.minLength(1, "must not be empty")),
  destinations: v.optional(v.record(v.string(), v.unknown()), {}),
  authorization: v.optional(v.object({ version: v.string(), document: v.unknown() })),
});

/** Throws only when the envelope is unusable; per-destination problems land in `rejected`. */
export function parseAnswer(body: unknown): ParsedAnswer {
  const raw = validate(answerSchema, body, { source: "on-demand config", code: "ERR_CONFIG_INVALID" });
  const at = `on-demand config ${raw.version}`;
  const out: ParsedAnswer = { version: raw.version, update: { version: raw.version, set: {}, remove: [] }, seen: {}, rejected: {} };
  for (const [name, resource] of Object.entries(raw.destinations)) {
    const version = (resource as { version?: unknown } | null)?.version;
    try {
      const r = validate(resourceSchema, resource, { source: `${at}: destination "${name}"`, code: "ERR_CONFIG_INVALID" });
      out.seen[name] = { version: r.version, found: r.found };
      if (!r.found) {
        out.update.remove.push(name);
        continue;
      }
      const policy = r.policy === undefined ? undefined : parsePolicy(r.policy, `${at}: destination "${name}": policy`);
      if (policy !== undefined && logicalName(policy.route.destination) !== logicalName(name)) {
        throw new Error(`${at}: destination "${name}": policy route.destination is "${policy.route.destination}"`);
      }
      const endpoints = r.endpoints.map((e) => ({ address: e.address, ...(e.identity === undefined ? {} : { identity: e.identity }), ...(e.labels === undefined ? {} : { labels: e.labels }) }));
      out.update.set[name] = { ...(policy === undefined ? {} : { policy }), endpoints, ...(r.vip === undefined ? {} : { vip: r.vip }) };
    } catch (e) {
      if (typeof version === "string" && out.seen[name] === undefined) out.seen[name] = { version, found: true };
      out.rejected[name] = (e as Error)?.message ?? String(e);
    }
  }
  if (raw.authorization !== undefined) {
    const { version, document } = raw.authorization;
    try {
      out.authorization = { version, ...(document === null || document === undefined ? {} : { document: parseAuthorization(document, `${at}: authorization`) }) };
    } catch (e) {
      out.authorization = { version, error: (e as Error)?.message ?? String(e) };
    }
  }
  return out;
}
