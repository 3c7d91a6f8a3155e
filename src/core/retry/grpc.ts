// gRPC retry conditions as Envoy reads them (router_filter.rst x-envoy-retry-grpc-on):
// the grpc-status of a response HEAD (a trailers-only answer) decides; a status that
// arrives in trailers after a body is never retried, because the body already went out.

import type { RetryOn } from "../policy/types.ts";

/** gRPC status codes (grpc/doc/statuscodes.md) that a retry_on condition names. */
export const GRPC_RETRY_CONDITIONS = {
  cancelled: 1,
  "deadline-exceeded": 4,
  "resource-exhausted": 8,
  internal: 13,
  unavailable: 14,
} as const satisfies Partial<Record<RetryOn, number>>;

export type GrpcRetryOn = keyof typeof GRPC_RETRY_CONDITIONS;

/** DEADLINE_EXCEEDED, the answer to an expired grpc-timeout. */
export const GRPC_DEADLINE_EXCEEDED = 4;

/** The retry_on condition a gRPC status maps to, if any. */
export function grpcRetryCondition(status: number): GrpcRetryOn | undefined {
  for (const [name, code] of Object.entries(GRPC_RETRY_CONDITIONS)) if (code === status) return name as GrpcRetryOn;
  return undefined;
}

/** grpc-status of a response head, as a number; undefined when absent or not a decimal code. */
export function grpcStatusOf(headers: Headers): number | undefined {
  const raw = headers.get("grpc-status");
  if (raw === null || !/^\d{1,3}$/.test(raw.trim())) return undefined;
  return Number(raw.trim());
}

/** Whether `req` is a gRPC call (gRPC over HTTP/2: content-type application/grpc[+proto|+json|…]). */
export function isGrpc(headers: Headers): boolean {
  const type = headers.get("content-type");
  return type !== null && /^application\/grpc(?:[+;]|$)/i.test(type);
}

/**
 * A trailers-only gRPC answer (PROTOCOL-HTTP2.md "Trailers-Only"): HTTP 200, the status
 * in the one HEADERS frame, no body. grpc-message is percent-encoded per the spec.
 */
export function grpcLocalReply(status: number, message: string): Response {
  return new Response(null, {
    status: 200,
    headers: { "content-type": "application/grpc", "grpc-status": String(status), "grpc-message": encodeGrpcMessage(message) },
  });
}

/** Percent-encodes everything outside printable ASCII and "%" itself (PROTOCOL-HTTP2.md, Status-Message). */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(message)) {
    out += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
