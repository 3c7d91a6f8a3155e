// Just enough DER to recognise a private key's algorithm and to wrap SEC1 and PKCS#1 keys
// into PKCS#8 (RFC 5208), the one private-key form Web Crypto imports.

export interface Tlv {
  tag: number;
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
  return { tag, value: bytes.subarray(pos, end), end };
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

export const TAG = { INTEGER: 0x02, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06, SEQUENCE: 0x30 } as const;

export function hex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
