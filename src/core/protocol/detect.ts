// Protocol detection from a connection's first bytes (docs/protocols.md): HTTP/1.x, HTTP/2
// prior knowledge, a TLS ClientHello, or anything else (opaque TCP). Pure and bounded: it
// never needs more than 24 bytes, the length of the HTTP/2 connection preface.

export type DetectedProtocol = "http1" | "h2" | "tls" | "opaque";

/** RFC 9113 §3.4: the client connection preface of HTTP/2 with prior knowledge. */
export const H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** Beyond this many bytes detection always decides. */
export const DETECT_MAX_BYTES = H2_PREFACE.length;

/**
 * RFC 9110 §9 methods plus PATCH (RFC 5789): the request line starts with one of these and
 * a space. Unknown extension methods are taken for opaque bytes, as Linkerd does; the
 * alternative (any token then space) would mistake many text protocols for HTTP.
 */
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"] as const;

const TLS_HANDSHAKE = 0x16;
const TLS_MAJOR = 0x03;
/** Record versions 3.0 (SSL 3) to 3.4; a ClientHello record says 3.1 (RFC 8446 §5.1) in practice. */
const TLS_MAX_MINOR = 0x04;

const encoder = new TextEncoder();
const SIGNATURES: readonly { protocol: "http1" | "h2"; bytes: Uint8Array }[] = [
  { protocol: "h2", bytes: encoder.encode(H2_PREFACE) },
  ...METHODS.map((m) => ({ protocol: "http1" as const, bytes: encoder.encode(`${m} `) })),
];

/**
 * What the first bytes of a connection speak; `undefined` while they are still a prefix of
 * something recognisable (read more). Never undefined for 24 bytes or more.
 */
export function detectProtocol(bytes: Uint8Array): DetectedProtocol | undefined {
  if (bytes.length === 0) return undefined;
  if (bytes[0] === TLS_HANDSHAKE) {
    if (bytes.length >= 2 && bytes[1] !== TLS_MAJOR) return "opaque";
    if (bytes.length >= 3 && bytes[2]! > TLS_MAX_MINOR) return "opaque";
    return bytes.length >= 3 ? "tls" : undefined;
  }
  let pending = false;
  for (const s of SIGNATURES) {
    const n = Math.min(bytes.length, s.bytes.length);
    if (!samePrefix(bytes, s.bytes, n)) continue;
    if (bytes.length >= s.bytes.length) return s.protocol;
    pending = true;
  }
  return pending ? undefined : "opaque";
}

function samePrefix(a: Uint8Array, b: Uint8Array, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return false;
  return true;
}
