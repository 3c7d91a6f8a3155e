// Responses the sidecar writes itself (no route, no endpoint, upstream failure, timeout).
// Bodies follow Envoy's wording so operators recognise them, then say what remora saw.

import type { UpstreamErrorKind } from "../upstream.ts";

export function localReply(status: number, text: string): Response {
  return new Response(`${text}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

/** Envoy's reset reasons (StreamResetReason) as they appear in its local replies. */
const RESET_REASON: Readonly<Record<UpstreamErrorKind, string>> = {
  "connect-failure": "connection failure",
  tls: "connection failure, transport failure reason: TLS error: peer certificate rejected",
  reset: "connection termination",
  "refused-stream": "remote refused stream reset",
  timeout: "timeout",
  overflow: "overflow",
};

/** The answer when the last attempt got no response at all. */
export function upstreamFailureReply(kind: UpstreamErrorKind, endpoint: string, message: string): Response {
  const detail = `(remora: last attempt to ${endpoint} failed with ${kind}: ${message})`;
  // A per-try timeout that is not retried becomes Envoy's 504 "upstream request timeout".
  if (kind === "timeout") return localReply(504, `upstream request timeout ${detail}`);
  return localReply(503, `upstream connect error or disconnect/reset before headers. reset reason: ${RESET_REASON[kind]} ${detail}`);
}
