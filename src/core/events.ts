// Observable events of the request path. Metrics, access logs and `remora demo`'s
// narration are all built from these, so what is narrated is what happened.

import type { Availability } from "./pipeline/availability.ts";
import type { ConnectionInfo, UpstreamErrorKind } from "./upstream.ts";

export type MeshEvent =
  | { type: "resolve"; requestId: string; destination: string; endpoints: Availability }
  | { type: "pick"; requestId: string; destination: string; endpoint: string; attempt: number; balancer: string }
  | { type: "connection"; requestId: string; destination: string; endpoint: string; attempt: number; info: ConnectionInfo }
  | { type: "attempt-failed"; requestId: string; destination: string; endpoint: string; attempt: number; kind: UpstreamErrorKind | "status"; status?: number; message: string; durationMs: number }
  | { type: "retry"; requestId: string; destination: string; attempt: number; reason: string; backoffMs: number }
  | { type: "retry-abandoned"; requestId: string; destination: string; reason: string }
  | { type: "response"; requestId: string; destination: string; endpoint?: string; status: number; attempts: number; durationMs: number; peerIdentity?: string }
  | { type: "eject"; destination: string; endpoint: string; reason: "consecutive_5xx" | "consecutive_gateway_failure"; untilMs: number; ejectionCount: number }
  | { type: "uneject"; destination: string; endpoint: string }
  // Traffic management (route.rules): which rule and subset took the request, injected
  // faults, mirrored copies (reported when the copy settles), local rate limiting.
  | { type: "rule"; requestId: string; destination: string; rule: string; subset?: string }
  | { type: "fault"; requestId: string; destination: string; rule: string; kind: "delay" | "abort"; status?: number; delayMs?: number }
  | { type: "mirror"; requestId: string; destination: string; mirror: string; endpoint?: string; result: "success" | "failure"; status?: number; message?: string }
  | { type: "rate-limited"; requestId: string; destination: string; rule?: string; retryAfterS: number };

/** The final event of every request (observe stage): what metrics and access records are made from. */
export type ResponseEvent = Extract<MeshEvent, { type: "response" }>;

export type EventSink = (e: MeshEvent) => void;
