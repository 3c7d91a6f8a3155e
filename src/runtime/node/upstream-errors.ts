// Maps Node socket and OpenSSL errors to UpstreamError kinds (connect-failure, tls, reset,
// timeout), each with one sentence naming the endpoint address.

import { UpstreamError } from "../../core/upstream.ts";

const CONNECT_FAILURES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ETIMEDOUT: "connection timed out",
  EADDRNOTAVAIL: "local address not available",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
  ECONNRESET: "connection reset before the TLS handshake completed",
  EPIPE: "connection closed before the TLS handshake completed",
};

// Node's names for X509_V_ERR_* (the chain failed OpenSSL's verification against the bundle).
const CERTIFICATE_FAILURES = new Set([
  "UNABLE_TO_GET_ISSUER_CERT", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE", "CERT_SIGNATURE_FAILURE", "CERT_NOT_YET_VALID", "CERT_HAS_EXPIRED",
  "ERROR_IN_CERT_NOT_BEFORE_FIELD", "ERROR_IN_CERT_NOT_AFTER_FIELD", "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN", "CERT_CHAIN_TOO_LONG", "CERT_REVOKED", "INVALID_CA", "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE", "CERT_UNTRUSTED", "CERT_REJECTED", "HOSTNAME_MISMATCH", "ERR_TLS_CERT_ALTNAME_INVALID",
]);

// TLS alerts a server sends when it rejects our certificate (RFC 8446 §6.2).
const CERTIFICATE_ALERT = /^ERR_SSL_.*ALERT_(BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_|UNKNOWN_CA|ACCESS_DENIED|DECRYPT_ERROR)/;

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** An error before the connection was ready (TCP connect, TLS handshake). */
export function connectError(err: unknown, address: string): UpstreamError {
  const code = codeOf(err);
  if (code && CERTIFICATE_FAILURES.has(code)) {
    const why = code === "CERT_HAS_EXPIRED" ? "an expired certificate" : `a certificate that does not chain to the trust bundle`;
    return new UpstreamError("tls", address, `upstream ${address} presented ${why} (${code})`, { cause: err });
  }
  if (code && CERTIFICATE_ALERT.test(code)) return rejectedOurCertificate(err, code, address);
  const what = (code && CONNECT_FAILURES[code]) ?? (code?.startsWith("ERR_SSL_")
    ? `the TLS handshake failed (${code})`
    : `${(err as Error)?.message ?? String(err)}`);
  return new UpstreamError("connect-failure", address, `cannot connect to upstream ${address}: ${what}`, { cause: err });
}

/** An error after the connection was ready and before the response head arrived. */
export function exchangeError(err: unknown, address: string): UpstreamError {
  const code = codeOf(err);
  // In TLS 1.3 the server judges our certificate after our side of the handshake is done,
  // so its refusal arrives as an alert on the first read.
  if (code && CERTIFICATE_ALERT.test(code)) return rejectedOurCertificate(err, code, address);
  return new UpstreamError("reset", address,
    `upstream ${address} closed the connection before sending a response (${code ?? (err as Error)?.message ?? "reset"})`, { cause: err });
}

function rejectedOurCertificate(err: unknown, code: string, address: string): UpstreamError {
  return new UpstreamError("tls", address, `upstream ${address} rejected this sidecar's certificate (${code})`, { cause: err });
}

/** The peer verifier refused the chain or the SPIFFE ID it carries. */
export function identityError(err: unknown, address: string, presented: string[], expected: string | undefined): UpstreamError {
  const reason = ((err as Error)?.message ?? String(err)).replace(/\.$/, "");
  const shown = presented.length > 0 ? presented.join(", ") : "no SPIFFE ID";
  const message = expected !== undefined && !presented.includes(expected)
    ? `upstream ${address} presented ${shown} but ${expected} was expected (${reason})`
    : `upstream ${address} presented ${shown}, which failed SVID verification (${reason})`;
  return new UpstreamError("tls", address, message, { cause: err });
}

/** Per-try timeouts (a TimeoutError reason) become kind "timeout"; other aborts propagate as they are. */
export function abortError(signal: AbortSignal, address: string): unknown {
  const reason: unknown = signal.reason;
  if ((reason as { name?: unknown } | null)?.name === "TimeoutError") {
    return new UpstreamError("timeout", address, `upstream ${address} did not answer within the per-try timeout`, { cause: reason });
  }
  return reason;
}
