// The static sidecar configuration file (`remora proxy --config FILE`): its schema and
// the typed settings a sidecar runs with. File reading lives in the CLI; this module
// only validates documents, so the same rules serve the control plane later.

import * as v from "valibot";
import type { Endpoint } from "../core/endpoint.ts";
import type { InboundMode } from "../runtime/types.ts";
import { validate } from "../core/validation.ts";
import { limitsSchema } from "./limits.ts";
import { protocolsSchema } from "./protocols.ts";

const address = v.pipe(
  v.string(),
  v.regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, "must be host:port"),
);

const spiffeUri = v.pipe(v.string(), v.startsWith("spiffe://", "must be a spiffe:// URI"));

const endpointSchema = v.strictObject({
  address,
  identity: v.optional(spiffeUri),
  labels: v.optional(v.record(v.string(), v.string())),
});

export const configSchema = v.strictObject({
  identity: v.strictObject({
    cert: v.string(),
    key: v.string(),
    bundle: v.string(),
  }),
  trust_domain: v.optional(v.string()),
  inbound: v.optional(
    v.strictObject({
      listen: v.optional(address, "127.0.0.1:15006"),
      app: address,
      mode: v.optional(v.picklist(["STRICT", "PERMISSIVE", "DISABLE"]), "STRICT"),
    }),
  ),
  outbound: v.optional(v.strictObject({ listen: v.optional(address, "127.0.0.1:15001") }), {}),
  admin: v.optional(v.strictObject({ listen: v.optional(address, "127.0.0.1:15000") }), {}),
  endpoints: v.optional(v.record(v.string(), v.array(endpointSchema)), {}),
  policies: v.optional(v.array(v.union([v.string(), v.record(v.string(), v.unknown())])), []),
  drain_timeout: v.optional(v.string()),
  /** One JSON access line per request on stdout (default true); `--access-log` wins over it. */
  access_log: v.optional(v.boolean()),
  /** Request and connection limits on every listener (src/sidecar/limits.ts, docs/hardening.md). */
  limits: v.optional(limitsSchema),
  /** Detection, opaque_ports, skip_ports, tunnel idle timeouts, TCP listeners (src/sidecar/protocols.ts, docs/protocols.md). */
  protocols: v.optional(protocolsSchema),
  tracing: v.optional(
    v.strictObject({
      otlp_endpoint: v.pipe(v.string(), v.regex(/^https?:\/\/[^\s/]+/, "must be an http:// or https:// URL (the OTLP/HTTP collector)")),
    }),
  ),
});

export type ConfigDocument = v.InferOutput<typeof configSchema>;

export function parseConfigDocument(doc: unknown, source: string): ConfigDocument {
  return validate(configSchema, doc, { source, code: "ERR_CONFIG_INVALID" });
}

export interface ListenerSettings {
  listen: string;
}

export interface InboundSettings extends ListenerSettings {
  app: string;
  mode: InboundMode;
}

export type EndpointMap = Record<string, Endpoint[]>;
