// Strict HTTP/1.1 request-head parsing for the native Bun listener (RFC 9112 §2-§6). Where
// the RFC lets a server choose, this one refuses: bare LF or CR, NUL, obs-fold, whitespace
// before a colon, Content-Length with Transfer-Encoding, differing Content-Lengths and any
// transfer coding but a lone "chunked" each end the connection with a 400, so no two
// parsers on the path can frame the same bytes differently (request smuggling).

import { Buffer } from "node:buffer";
import type { LimitReason } from "../types.ts";

export interface RequestHead {
  method: string;
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  /** Field names and values in arrival order: name, value, name, value... */
  raw: string[];
  host: string | undefined;
  hosts: number;
  /** Declared body length; undefined without Content-Length. */
  contentLength: number | undefined;
  chunked: boolean;
  /** The connection ends after this exchange (Connection: close, or HTTP/1.0 without keep-alive). */
  close: boolean;
  /** Upgrade requested (an Upgrade field and "upgrade" among the Connection options). */
  upgrade: boolean;
  expectContinue: boolean;
  /** Bytes of the head, final CRLFCRLF included. */
  length: number;
}

export type HeadParse =
  | { kind: "incomplete" }
  | { kind: "head"; head: RequestHead }
  /** A limit passed (431): answered with the limit's own sentence. */
  | { kind: "limit"; reason: LimitReason }
  /** Not a request this server reads: 400 and close; `message` when a sentence says more than "malformed". */
  | { kind: "bad"; message?: string };

export interface HeadLimits {
  maxRequestHeaderBytes: number;
  maxRequestHeaders: number;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([\x21-\x7e]+) HTTP\/1\.([01])$/;
const NO_VERSION = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+$/;
/** Controls other than HT are never valid in a head; CR and LF only as CRLF (checked apart). */
const FORBIDDEN = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;

/** Where CRLFCRLF ends at or after `from`, or -1. */
export function findHeadEnd(bytes: Uint8Array, from: number): number {
  for (let i = Math.max(0, from); i + 3 < bytes.length; i++) {
    if (bytes[i + 3] === 10 && bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13) return i + 4;
  }
  return -1;
}

/** Empty lines before a request line are ignored (RFC 9112 §2.2): how many leading CRLF bytes to drop. */
export function leadingEmptyLines(bytes: Uint8Array): number {
  let i = 0;
  while (i + 1 < bytes.length && bytes[i] === 13 && bytes[i + 1] === 10) i += 2;
  return i;
}

/**
 * The request head at the start of `bytes` (leading empty lines already dropped). `scanFrom`
 * lets a caller that got "incomplete" resume the search where it stopped.
 */
export function parseHead(bytes: Uint8Array, limits: HeadLimits, scanFrom = 0): HeadParse {
  const end = findHeadEnd(bytes, scanFrom - 3);
  if (end < 0) {
    if (bytes.length > limits.maxRequestHeaderBytes) return { kind: "limit", reason: "header_size" };
    // A line ending in a bare LF never becomes CRLFCRLF: refuse now rather than wait for the timeout.
    const lf = bytes.indexOf(10);
    if (lf === 0 || (lf > 0 && bytes[lf - 1] !== 13)) return { kind: "bad" };
    return { kind: "incomplete" };
  }
  if (end > limits.maxRequestHeaderBytes) return { kind: "limit", reason: "header_size" };
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, end - 4).toString("latin1");
  if (FORBIDDEN.test(text)) return { kind: "bad" };
  // Walked by offsets: a split made an array and a string per line (issue 8). FORBIDDEN
  // has refused any CR or LF outside a CRLF, so CRLF alone ends a line.
  const firstEnd = text.indexOf("\r\n");
  const line = firstEnd < 0 ? text : text.slice(0, firstEnd);
  const m = REQUEST_LINE.exec(line);
  if (!m) {
    // RFC 9112 §3: the version is required (an HTTP/0.9 request line is refused).
    if (NO_VERSION.test(line)) return { kind: "bad", message: "request line has no HTTP version; send METHOD TARGET HTTP/1.1" };
    return { kind: "bad" };
  }
  const minor = Number(m[3]);
  const raw: string[] = [];
  let host: string | undefined;
  let hosts = 0;
  let lengths: string | undefined;
  let codings: string | undefined;
  let connection = "";
  let upgradeField = false;
  let expectContinue = false;
  // The count first, as before: too many fields is a 431 whatever else is wrong with them.
  let count = firstEnd < 0 ? 0 : 1;
  for (let i = text.indexOf("\r\n", firstEnd + 2); firstEnd >= 0 && i >= 0; i = text.indexOf("\r\n", i + 2)) count++;
  if (count > limits.maxRequestHeaders) return { kind: "limit", reason: "header_count" };
  for (let at = firstEnd < 0 ? text.length : firstEnd + 2; at < text.length; ) {
    const crlf = text.indexOf("\r\n", at);
    const end = crlf < 0 ? text.length : crlf;
    const colon = text.indexOf(":", at);
    // obs-fold (a line opening with SP or HT) and SP before the colon (RFC 9112 §5.1, §5.2) land here too.
    if (colon <= at || colon > end) return { kind: "bad" };
    const name = text.slice(at, colon);
    if (!TOKEN.test(name)) return { kind: "bad" };
    const value = owsTrimmed(text, colon + 1, end);
    at = end + 2;
    raw.push(name, value);
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === "host") {
          hosts++;
          host = value;
        }
        break;
      case 6:
        if (name.toLowerCase() === "expect" && value.toLowerCase() === "100-continue") expectContinue = true;
        break;
      case 7:
        if (name.toLowerCase() === "upgrade") upgradeField = true;
        break;
      case 10:
        if (name.toLowerCase() === "connection") connection += `,${value.toLowerCase()}`;
        break;
      case 14:
        if (name.toLowerCase() === "content-length") lengths = lengths === undefined ? value : `${lengths},${value}`;
        break;
      case 17:
        if (name.toLowerCase() === "transfer-encoding") codings = codings === undefined ? value : `${codings},${value}`;
        break;
    }
  }
  const options = connection === "" ? [] : connection.split(",").map((o) => o.trim());
  let chunked = false;
  let contentLength: number | undefined;
  if (codings !== undefined) {
    // RFC 9112 §6.1: CL with TE is a smuggling attempt; HTTP/1.0 has no chunked framing.
    if (lengths !== undefined || minor === 0) return { kind: "bad" };
    const list = codings.split(",").map((c) => c.trim().toLowerCase()).filter((c) => c !== "");
    // Only a lone "chunked": a coding before it (gzip, chunked) would have to be undone by us.
    if (list.length !== 1 || list[0] !== "chunked") return { kind: "bad" };
    chunked = true;
  } else if (lengths !== undefined) {
    const items = lengths.split(",").map((c) => c.trim());
    if (!items.every((c) => /^\d+$/.test(c))) return { kind: "bad" };
    // Identical repeats are one length (RFC 9110 §8.6); differing ones are refused.
    if (items.some((c) => stripZeros(c) !== stripZeros(items[0]!))) return { kind: "bad" };
    contentLength = Number(items[0]);
  }
  const close = options.includes("close") || (minor === 0 && !options.includes("keep-alive"));
  return {
    kind: "head",
    head: {
      method: m[1]!,
      target: m[2]!,
      minor,
      raw,
      host,
      hosts,
      contentLength,
      chunked,
      close,
      upgrade: upgradeField && options.includes("upgrade"),
      expectContinue,
      length: end,
    },
  };
}

/** `text` from `start` to `end` without the optional whitespace around a field value. */
function owsTrimmed(text: string, start: number, end: number): string {
  let s = start;
  let e = end;
  while (s < e && (text.charCodeAt(s) === 32 || text.charCodeAt(s) === 9)) s++;
  while (e > s && (text.charCodeAt(e - 1) === 32 || text.charCodeAt(e - 1) === 9)) e--;
  return text.slice(s, e);
}

function stripZeros(digits: string): string {
  const s = digits.replace(/^0+/, "");
  return s === "" ? "0" : s;
}
