// Listener limits as a sidecar sets them: the static config's `limits:` block and the
// `remora proxy` flags, both turned into the runtime's ListenerLimits (docs/hardening.md).

import * as v from "valibot";
import type { ListenerLimits } from "../runtime/types.ts";
import { RemoraError } from "../core/errors.ts";
import { parseDuration } from "../core/duration.ts";

const count = (max: number) => v.pipe(v.number(), v.integer("must be a whole number"), v.minValue(1, "must be at least 1"), v.maxValue(max, `must be at most ${max}`));

/** `limits:` in the static config; every field optional, the defaults are Envoy's (src/runtime/limits.ts). */
export const limitsSchema = v.strictObject({
  /** KiB of request line plus headers, per request (Envoy: max_request_headers_kb, 60). */
  max_request_headers_kb: v.optional(count(8192)),
  /** Header fields per request (Envoy: max_headers_count, 100). */
  max_request_headers: v.optional(count(10_000)),
  /** Bytes of request body, per request (default 10 MiB). */
  max_request_body_bytes: v.optional(count(Number.MAX_SAFE_INTEGER)),
  /** Open connections, per listener (default 10000). */
  max_connections: v.optional(count(1_000_000)),
  /** Duration, per request: headers complete within it (default 10s). */
  request_headers_timeout: v.optional(v.string()),
  /** Duration, per request: the longest a body may send nothing (default 30s). */
  request_body_idle_timeout: v.optional(v.string()),
});

export type LimitsDocument = v.InferOutput<typeof limitsSchema>;

/** The document's fields as ListenerLimits; `where` prefixes field names in errors ("FILE: limits."). */
export function limitsFromDocument(doc: LimitsDocument | undefined, where: string): Partial<ListenerLimits> {
  if (!doc) return {};
  const out: Partial<ListenerLimits> = {};
  if (doc.max_request_headers_kb !== undefined) out.maxRequestHeaderBytes = doc.max_request_headers_kb * 1024;
  if (doc.max_request_headers !== undefined) out.maxRequestHeaders = doc.max_request_headers;
  if (doc.max_request_body_bytes !== undefined) out.maxRequestBodyBytes = doc.max_request_body_bytes;
  if (doc.max_connections !== undefined) out.maxConnections = doc.max_connections;
  if (doc.request_headers_timeout !== undefined) out.requestHeadersTimeoutMs = duration(doc.request_headers_timeout, `${where}request_headers_timeout`);
  if (doc.request_body_idle_timeout !== undefined) out.requestBodyIdleTimeoutMs = duration(doc.request_body_idle_timeout, `${where}request_body_idle_timeout`);
  return out;
}

/** `remora proxy` flags, for util.parseArgs (both modes). */
export const limitFlags = {
  "max-request-headers-kb": { type: "string" },
  "max-request-headers": { type: "string" },
  "max-request-body-bytes": { type: "string" },
  "max-connections": { type: "string" },
  "request-headers-timeout": { type: "string" },
  "request-body-idle-timeout": { type: "string" },
} as const;

export const limitFlagsUsage = `Limits (every listener; defaults as Envoy's, docs/hardening.md):
  --max-request-headers-kb N  request line + headers, KiB (default 60; beyond: 431)
  --max-request-headers N     header fields per request (default 100; beyond: 431)
  --max-request-body-bytes N  request body (default 10485760; beyond: 413)
  --max-connections N         open connections per listener (default 10000; beyond: 503 or closed)
  --request-headers-timeout D headers complete within D (default 10s; beyond: 408)
  --request-body-idle-timeout D  a body silent for D is cut (default 30s; 408)`;

type FlagValues = { [K in keyof typeof limitFlags]?: string | undefined };

/** Flags present in `values` as a limits document (so flags and files share one validation). */
export function limitsFromFlags(values: FlagValues): Partial<ListenerLimits> {
  const num = (flag: keyof FlagValues): number | undefined => {
    const text = values[flag];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n < 1) throw new RemoraError("ERR_CONFIG_INVALID", `remora proxy: --${flag} "${text}" is not a whole number of at least 1`);
    return n;
  };
  const out: Partial<ListenerLimits> = {};
  const kb = num("max-request-headers-kb");
  if (kb !== undefined) out.maxRequestHeaderBytes = kb * 1024;
  const headers = num("max-request-headers");
  if (headers !== undefined) out.maxRequestHeaders = headers;
  const body = num("max-request-body-bytes");
  if (body !== undefined) out.maxRequestBodyBytes = body;
  const conns = num("max-connections");
  if (conns !== undefined) out.maxConnections = conns;
  const headersTimeout = values["request-headers-timeout"];
  if (headersTimeout !== undefined) out.requestHeadersTimeoutMs = duration(headersTimeout, "remora proxy: --request-headers-timeout");
  const bodyIdle = values["request-body-idle-timeout"];
  if (bodyIdle !== undefined) out.requestBodyIdleTimeoutMs = duration(bodyIdle, "remora proxy: --request-body-idle-timeout");
  return out;
}

function duration(text: string, field: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    ms = Number.NaN;
  }
  if (!(ms > 0)) throw new RemoraError("ERR_CONFIG_INVALID", `${field} "${text}" is not a positive duration (e.g. 10s)`);
  return ms;
}
