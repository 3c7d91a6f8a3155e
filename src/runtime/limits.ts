// Default request and connection limits for every listener, and the raw HTTP answer a
// listener writes to an offender before closing (shared by all three adapters).

import type { LimitReason, ListenerLimits } from "./types.ts";

/** Envoy's defaults where Envoy has one (60 KiB / 100 headers); the rest are Envoy-like bounds. */
export const DEFAULT_LIMITS: Readonly<ListenerLimits> = {
  maxRequestHeaderBytes: 60 * 1024,
  maxRequestHeaders: 100,
  maxRequestBodyBytes: 10 * 1024 * 1024,
  maxConnections: 10_000,
  requestHeadersTimeoutMs: 10_000,
  requestBodyIdleTimeoutMs: 30_000,
};

export function resolveLimits(partial: Partial<ListenerLimits> | undefined): ListenerLimits {
  const out = { ...DEFAULT_LIMITS };
  if (partial) for (const [k, v] of Object.entries(partial)) if (v !== undefined) (out as Record<string, number>)[k] = v;
  return out;
}

/** The status each limit answers with. */
export const LIMIT_STATUS: Readonly<Record<LimitReason, number>> = {
  header_size: 431,
  header_count: 431,
  body_size: 413,
  connections: 503,
  headers_timeout: 408,
  body_timeout: 408,
  bad_request: 400,
};

const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Bad Request",
  408: "Request Timeout",
  413: "Content Too Large",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** One sentence for the offender and the log. */
export function limitMessage(reason: LimitReason, limits: ListenerLimits): string {
  switch (reason) {
    case "header_size": return `request headers exceed ${limits.maxRequestHeaderBytes} bytes`;
    case "header_count": return `request has more than ${limits.maxRequestHeaders} header fields`;
    case "body_size": return `request body exceeds ${limits.maxRequestBodyBytes} bytes`;
    case "connections": return `listener is at its limit of ${limits.maxConnections} connections`;
    case "headers_timeout": return `request headers not complete within ${limits.requestHeadersTimeoutMs} ms`;
    case "body_timeout": return `request body sent nothing for ${limits.requestBodyIdleTimeoutMs} ms`;
    case "bad_request": return "malformed HTTP request";
  }
}

/** A complete HTTP/1.1 response that closes the connection, for writing straight to a socket. */
export function rawRejection(reason: LimitReason, limits: ListenerLimits): string {
  const status = LIMIT_STATUS[reason];
  const body = `remora: ${limitMessage(reason, limits)}\n`;
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\ncontent-type: text/plain; charset=utf-8\r\n` +
    `content-length: ${new TextEncoder().encode(body).length}\r\nx-remora-rejected: ${reason}\r\nconnection: close\r\n\r\n${body}`;
}

/** The same answer as a web Response (listeners that serve through a handler API). */
export function rejectionResponse(reason: LimitReason, limits: ListenerLimits): Response {
  return new Response(`remora: ${limitMessage(reason, limits)}\n`, {
    status: LIMIT_STATUS[reason],
    headers: { "content-type": "text/plain; charset=utf-8", "x-remora-rejected": reason, connection: "close" },
  });
}
