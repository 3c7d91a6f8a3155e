// What a TLS chain-verification failure means, from the X509_V_ERR_* name node:tls and Bun
// give it: the sentence for the log and the `reason` label of remora_inbound_denied_total.
// Shared by the node adapter's TLS acceptor and Bun's native TLS listener.

import type { TlsRefusal } from "./types.ts";

// OpenSSL's X509_V_ERR_* names as node:tls spells them.
const VERIFY_CODE = /^(UNABLE_TO_|CERT_|SELF_SIGNED_|DEPTH_ZERO_|INVALID_CA|PATH_LENGTH_|INVALID_PURPOSE|HOSTNAME_MISMATCH)/;

/** A sentence for a chain-verification code, or undefined when `code` is not one. */
export function describeVerifyCode(code: string | undefined): string | undefined {
  if (!code || !VERIFY_CODE.test(code)) return undefined;
  if (code === "CERT_HAS_EXPIRED") return "the client certificate has expired";
  if (code === "CERT_NOT_YET_VALID") return "the client certificate is not yet valid";
  if (code === "INVALID_PURPOSE") return "the client certificate may not be used for TLS client authentication (INVALID_PURPOSE)";
  return `the client certificate does not chain to the trust bundle (${code})`;
}

/** The metric label for a chain-verification code. */
export function verifyCodeKind(code: string): TlsRefusal {
  if (code === "CERT_HAS_EXPIRED") return "expired";
  if (code === "CERT_NOT_YET_VALID") return "not-yet-valid";
  if (code === "INVALID_PURPOSE") return "key-usage";
  return "untrusted";
}
