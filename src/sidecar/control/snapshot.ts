// A config snapshot from the control plane (docs/control-api.md "Config"), checked whole
// before anything is applied: a snapshot with one bad document is refused entirely, so a
// sidecar never runs half of a new config.

import * as v from "valibot";
import type { Authorization } from "../../core/authz.ts";
import type { Policy } from "../../core/policy/types.ts";
import type { EndpointMap } from "../config.ts";
import { parseAuthorization } from "../../core/authz.ts";
import { parsePolicy } from "../../core/policy/parse.ts";
import { isSpiffeId } from "../../core/identity/spiffe-id.ts";
import { RemoraError } from "../../core/errors.ts";
import { describeValue, validate } from "../../core/validation.ts";

export interface Snapshot {
  version: string;
  policies: Policy[];
  authorization: Authorization[];
  endpoints: EndpointMap;
  /** Service name -> its virtual IP (a request whose Host is the VIP routes to the service); absent when none were sent. */
  services?: Record<string, { vip: string }>;
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;
// A proxy without an inbound listener (a pure client) may be listed with no address; it is
// not an endpoint anyone can call, so it is left out rather than failing the snapshot.
const address = v.optional(v.pipe(v.string(), v.check((s) => s === "" || HOST_PORT.test(s), (i) => `${describeValue(i.input)} is not host:port`)));

const snapshotSchema = v.object({
  version: v.pipe(v.string(), v.minLength(1, "must not be empty")),
  policies: v.optional(v.array(v.unknown()), []),
  authorization: v.optional(v.array(v.unknown()), []),
  endpoints: v.optional(
    v.record(
      v.string(),
      v.array(
        v.object({
          address,
          identity: v.optional(v.pipe(v.string(), v.check(isSpiffeId, (i) => `${describeValue(i.input)} is not a SPIFFE ID`))),
          labels: v.optional(v.record(v.string(), v.string())),
        }),
      ),
    ),
    {},
  ),
  services: v.optional(
    v.record(
      v.string(),
      v.object({ vip: v.pipe(v.string(), v.check((s) => /^\d{1,3}(\.\d{1,3}){3}$/.test(s), (i) => `${describeValue(i.input)} is not an IPv4 address`)) }),
    ),
  ),
});

/** Validates a snapshot; throws a RemoraError whose one sentence names the document and field. */
export function parseSnapshot(body: unknown): Snapshot {
  const raw = validate(snapshotSchema, body, { source: "config snapshot", code: "ERR_CONFIG_INVALID" });
  const at = `config snapshot ${raw.version}`;
  const policies = raw.policies.map((doc, i) => parsePolicy(doc, `${at}: policies[${i}]`));
  const authorization = raw.authorization.map((doc, i) => parseAuthorization(doc, `${at}: authorization[${i}]`));
  for (const [what, names] of [
    ["policies", policies.map((p) => p.route.destination)],
    ["authorization documents", authorization.map((a) => a.destination)],
  ] as const) {
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new RemoraError("ERR_CONFIG_INVALID", `${at}: two ${what} for destination "${dup}"`);
  }
  const endpoints: EndpointMap = {};
  for (const [name, eps] of Object.entries(raw.endpoints)) {
    endpoints[name.toLowerCase()] = eps.flatMap((e) =>
      e.address === undefined || e.address === ""
        ? []
        : [{ address: e.address, ...(e.identity === undefined ? {} : { identity: e.identity }), ...(e.labels === undefined ? {} : { labels: e.labels }) }],
    );
  }
  const services = raw.services === undefined ? undefined : Object.fromEntries(Object.entries(raw.services).map(([name, s]) => [name.toLowerCase(), { vip: s.vip }]));
  return { version: raw.version, policies, authorization, endpoints, ...(services === undefined ? {} : { services }) };
}
