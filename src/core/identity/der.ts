// Just enough DER (X.690) for remora's identity code: read and write elements, and decode the
// few universal types certificates, keys and CSRs use (OID, INTEGER, BIT STRING, times).

export interface Tlv {
  tag: number;
  /** Offset of this element's tag in the input (the element is input[start, end)). */
  start: number;
  /** Content bytes (a view into the input). */
  value: Uint8Array;
  /** Offset just past this element in the input. */
  end: number;
}

/** Reads one definite-length element at `offset`; null when the bytes are not DER. */
export function readTlv(bytes: Uint8Array, offset = 0): Tlv | null {
  const tag = bytes[offset];
  let lenByte = bytes[offset + 1];
  if (tag === undefined || lenByte === undefined) return null;
  let pos = offset + 2;
  let length = lenByte;
  if (lenByte & 0x80) {
    const count = lenByte & 0x7f;
    if (count === 0 || count > 4) return null;
    length = 0;
    for (let i = 0; i < count; i++) {
      lenByte = bytes[pos++];
      if (lenByte === undefined) return null;
      length = length * 256 + lenByte;
    }
  }
  const end = pos + length;
  if (end > bytes.length) return null;
  return { tag, start: offset, value: bytes.subarray(pos, end), end };
}

/** The elements inside a constructed value (SEQUENCE, context tag). */
export function children(value: Uint8Array): Tlv[] | null {
  const out: Tlv[] = [];
  for (let offset = 0; offset < value.length; ) {
    const tlv = readTlv(value, offset);
    if (!tlv) return null;
    out.push(tlv);
    offset = tlv.end;
  }
  return out;
}

export function encodeTlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  const head =
    n < 0x80 ? [tag, n]
    : n < 0x100 ? [tag, 0x81, n]
    : n < 0x10000 ? [tag, 0x82, n >> 8, n & 0xff]
    : [tag, 0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(head.length + n);
  out.set(head);
  out.set(content, head.length);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** The elements of `tlv` when it is a constructed value with tag `tag`; null otherwise. */
export function childrenOf(tlv: Tlv | undefined, tag: number): Tlv[] | null {
  return tlv?.tag === tag ? children(tlv.value) : null;
}

/** OBJECT IDENTIFIER content -> dotted string ("1.2.840.10045.2.1"); null when malformed. */
export function decodeOid(value: Uint8Array): string | null {
  if (value.length === 0 || value[value.length - 1]! & 0x80) return null;
  const arcs: number[] = [];
  let arc = 0;
  let started = false;
  for (const b of value) {
    // X.690 §8.19.2: each arc in the fewest octets, so a leading 0x80 is not DER.
    if (!started && b === 0x80) return null;
    started = (b & 0x80) !== 0;
    arc = arc * 128 + (b & 0x7f);
    if (arc > Number.MAX_SAFE_INTEGER / 128) return null;
    if (!started) {
      arcs.push(arc);
      arc = 0;
    }
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join(".");
}

/** Dotted OID -> OBJECT IDENTIFIER content. */
export function encodeOid(dotted: string): Uint8Array {
  const [a = 0, b = 0, ...rest] = dotted.split(".").map(Number);
  const out: number[] = [];
  for (const arc of [a * 40 + b, ...rest]) {
    const septets = [arc & 0x7f];
    for (let v = Math.floor(arc / 128); v > 0; v = Math.floor(v / 128)) septets.unshift((v & 0x7f) | 0x80);
    out.push(...septets);
  }
  return new Uint8Array(out);
}

/** A whole OBJECT IDENTIFIER element. */
export function oidElement(dotted: string): Uint8Array {
  return encodeTlv(TAG.OID, encodeOid(dotted));
}

/**
 * INTEGER content as a small non-negative number; null when negative, not minimally
 * encoded (X.690 §8.3.2) or above 2^31.
 */
export function decodeSmallInteger(value: Uint8Array): number | null {
  const [first, second] = value;
  if (first === undefined || first & 0x80) return null;
  if (first === 0 && second !== undefined && !(second & 0x80)) return null;
  if (value.length > 5) return null;
  let n = 0;
  for (const b of value) n = n * 256 + b;
  return n <= 0x7fffffff ? n : null;
}

/** The magnitude of a non-negative INTEGER (leading 0x00 sign octets removed); null if negative or empty. */
export function unsignedInteger(value: Uint8Array): Uint8Array | null {
  if (value.length === 0 || value[0]! & 0x80) return null;
  let i = 0;
  while (i < value.length - 1 && value[i] === 0) i++;
  return value.subarray(i);
}

/** A non-negative INTEGER element from big-endian magnitude bytes (adds the 0x00 sign octet when needed). */
export function unsignedIntegerElement(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const bytes = magnitude.subarray(i);
  return encodeTlv(TAG.INTEGER, bytes.length === 0 || bytes[0]! & 0x80 ? concat(new Uint8Array([0]), bytes) : bytes);
}

export interface BitString {
  /** Unused bits in the last byte (0-7). */
  unusedBits: number;
  bytes: Uint8Array;
}

/** BIT STRING content; null when the unused-bits octet is missing or out of range. */
export function decodeBitString(value: Uint8Array): BitString | null {
  const unusedBits = value[0];
  if (unusedBits === undefined || unusedBits > 7 || (unusedBits > 0 && value.length === 1)) return null;
  return { unusedBits, bytes: value.subarray(1) };
}

/** A BIT STRING element holding whole bytes (signatures, public keys). */
export function bitStringElement(bytes: Uint8Array): Uint8Array {
  return encodeTlv(TAG.BIT_STRING, concat(new Uint8Array([0]), bytes));
}

// RFC 5280 §4.1.2.5.1 and .2: UTCTime is YYMMDDHHMMSSZ (years 50-99 are 19xx), GeneralizedTime
// YYYYMMDDHHMMSSZ; both in UTC, with seconds and without fractions.
const UTC_TIME = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED_TIME = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** A UTCTime or GeneralizedTime element -> milliseconds since the epoch; null when malformed. */
export function decodeTime(tlv: Tlv): number | null {
  let text = "";
  for (const b of tlv.value) text += String.fromCharCode(b);
  const m = tlv.tag === TAG.UTC_TIME ? UTC_TIME.exec(text) : tlv.tag === TAG.GENERALIZED_TIME ? GENERALIZED_TIME.exec(text) : null;
  if (!m) return null;
  const [, y = "", mo = "", d = "", h = "", mi = "", s = ""] = m;
  let year = Number(y);
  if (tlv.tag === TAG.UTC_TIME) year += year >= 50 ? 1900 : 2000;
  const [month, day, hour, minute, second] = [mo, d, h, mi, s].map(Number) as [number, number, number, number, number];
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  const date = new Date(ms);
  // Date.UTC rolls 31 April over into May: a field out of range shows as a different date.
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  return ms;
}

export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
