// The demo's sentences, each made from one observed event (a sidecar's feed line or a
// request record), never from what the demo expected to happen.

import type { FeedEvent } from "./feed.ts";
import type { RequestRecord } from "../../sidecar/event-stream.ts";
import { formatDuration } from "../../core/duration.ts";

export interface Cast {
  /** "B1 (127.0.0.1:40001)" for a known address (sidecar inbound or app), the address otherwise. */
  label(address: string | undefined): string;
  /** "B1" for a known address. */
  short(address: string | undefined): string;
}

/** One line for an event from the caller's (orders') sidecar. */
export function describeOutbound(e: FeedEvent, cast: Cast): string | undefined {
  const who = "sidecar A";
  switch (e.type) {
    case "resolve":
      return `${who}: resolve "${e.destination}" -> [${e.endpoints.map((x) => `${cast.label(x.address)}${x.available ? "" : " ejected"}`).join(", ")}]`;
    case "pick":
      return `${who}: attempt ${e.attempt}: pick ${cast.label(e.endpoint)} (${e.balancer.replace("_", " ")})`;
    case "connection":
      return e.info.reused
        ? `${who}: reuse the mTLS connection to ${cast.short(e.endpoint)}, peer ${e.info.peerIdentity ?? "plaintext"}`
        : `${who}: mTLS handshake with ${cast.label(e.endpoint)} OK in ${e.info.handshakeMs?.toFixed(1) ?? "?"} ms; peer certificate verified: ${e.info.peerIdentity ?? "none (plaintext)"}`;
    case "attempt-failed":
      return `${who}: attempt ${e.attempt} to ${cast.label(e.endpoint)} failed after ${e.durationMs.toFixed(1)} ms: ${e.kind === "status" ? `status ${e.status}` : e.kind} (${e.message})`;
    case "retry":
      return `${who}: retry_policy fires (${e.reason}); retry ${e.attempt - 1} after ${e.backoffMs.toFixed(0)} ms back-off`;
    case "retry-abandoned":
      return `${who}: no retry: ${e.reason}`;
    case "response":
      return `${who}: ${e.status} from ${e.endpoint ? cast.label(e.endpoint) : "the sidecar itself"} after ${e.attempts} attempt(s), ${e.durationMs.toFixed(1)} ms`;
    case "eject":
      return `${who}: outlier detection ejects ${cast.label(e.endpoint)} (${e.reason}) for ${formatDuration(Math.max(0, Math.round((e.untilMs - Date.parse(e.time)) / 100) * 100))}, ejection #${e.ejectionCount}; later calls skip it`;
    case "uneject":
      return `${who}: ${cast.label(e.endpoint)} returns to the pool`;
    case "request":
      return undefined;
  }
}

/** One line for a request record from a callee's (payments replica's) sidecar. */
export function describeInbound(name: string, r: RequestRecord): string {
  const caller = r.peer ? `${r.peer}${r.mtls ? " (mTLS, certificate verified)" : ""}` : "an unauthenticated caller";
  const outcome = r.status === 503 ? "503: its app failed (the connection was reset)" : `${r.status}`;
  return `sidecar ${name}: ${r.method} ${r.path} from ${caller} -> app ${r.upstream ?? "?"} -> ${outcome} in ${r.durationMs.toFixed(1)} ms`;
}

/** "B1 ✗ 503 -> B2 ✓  [B1 ejected]": the attempts of one call and what outlier detection did. */
export function pathOf(evs: readonly FeedEvent[], cast: Cast): string {
  const attempts: string[] = [];
  const notes: string[] = [];
  for (const e of evs) {
    if (e.type === "pick") attempts.push(cast.short(e.endpoint));
    if (e.type === "attempt-failed" && attempts.length) attempts[attempts.length - 1] += ` ✗ ${e.kind === "status" ? e.status : e.kind}`;
    if (e.type === "response" && e.status < 500 && attempts.length) attempts[attempts.length - 1] += " ✓";
    // Outlier detection acts while the attempt is being judged; say so after the path.
    if (e.type === "eject") notes.push(`[${cast.short(e.endpoint)} ejected]`);
    if (e.type === "uneject") notes.push(`[${cast.short(e.endpoint)} back]`);
  }
  return [attempts.join(" -> ") || "(no attempt)", ...notes].join("  ");
}
