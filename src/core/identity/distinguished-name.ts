// X.501 Names (a certificate's issuer and subject) as the text remora shows and compares:
// "O=remora, CN=cluster.local root CA", the exact form @peculiar/x509's Name.toString() gives,
// so messages, tests and admin pages read the same as before remora read certificates itself.

import { children, decodeOid, hex, TAG } from "./der.ts";

// The short names the library knows; any other attribute type prints as its dotted OID.
const SHORT_NAMES: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "2.5.4.6": "C",
  "0.9.2342.19200300.100.1.25": "DC",
  "1.2.840.113549.1.9.1": "E",
  "2.5.4.42": "G",
  "2.5.4.43": "I",
  "2.5.4.4": "SN",
  "2.5.4.12": "T",
};

const latin1 = (bytes: Uint8Array): string => {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
};
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();

/**
 * An attribute value as text, or null when its bytes cannot be a value of its type. The
 * string types decode as asn1js does; any other type prints as "#" and the hex of the
 * whole element (RFC 4514 §2.4).
 */
function attributeValue(tag: number, value: Uint8Array, element: Uint8Array): string | null {
  switch (tag) {
    case TAG.PRINTABLE_STRING:
    case TAG.TELETEX_STRING:
    case TAG.IA5_STRING:
      return escape(latin1(value));
    case TAG.UTF8_STRING:
      try {
        return escape(utf8.decode(value));
      } catch {
        // asn1js keeps invalid UTF-8 as one character per byte rather than refusing it.
        return escape(latin1(value));
      }
    case TAG.BMP_STRING: {
      if (value.length % 2) return null;
      let s = "";
      for (let i = 0; i < value.length; i += 2) s += String.fromCharCode((value[i]! << 8) | value[i + 1]!);
      return escape(s);
    }
    case TAG.UNIVERSAL_STRING: {
      // asn1js keeps the low 16 bits of each UCS-4 character.
      if (value.length % 4) return null;
      let s = "";
      for (let i = 0; i < value.length; i += 4) s += String.fromCharCode((value[i + 2]! << 8) | value[i + 3]!);
      return escape(s);
    }
    case TAG.NULL:
      return "";
    default:
      return `#${hex(element)}`;
  }
}

// RFC 4514 §2.4 escaping as the library applies it (only the first control character is
// hex-escaped: its regular expression has no g flag, and remora prints what it prints).
function escape(text: string): string {
  return text
    .replace(/([,+"\\<>;])/g, "\\$1")
    .replace(/^([ #])/, "\\$1")
    .replace(/([ ]$)/, "\\$1")
    .replace(/([\r\n\t])/, (c) => `\\${hex(encoder.encode(c)).toUpperCase()}`);
}

/**
 * The content of a Name (RFC 5280 §4.1.2.4: SEQUENCE OF RelativeDistinguishedName) as text,
 * RDNs in encoded order joined by ", ", multi-valued RDNs by "+"; null when malformed.
 */
export function formatName(content: Uint8Array): string | null {
  const rdns = children(content);
  if (!rdns) return null;
  const out: string[] = [];
  for (const rdn of rdns) {
    if (rdn.tag !== TAG.SET) return null;
    const attributes = children(rdn.value);
    if (!attributes) return null;
    const parts: string[] = [];
    for (const attribute of attributes) {
      const fields = attribute.tag === TAG.SEQUENCE ? children(attribute.value) : null;
      const [type, value] = fields ?? [];
      if (fields?.length !== 2 || type?.tag !== TAG.OID || !value) return null;
      const oid = decodeOid(type.value);
      if (oid === null) return null;
      const element = attribute.value.subarray(value.start, value.end);
      const text = attributeValue(value.tag, value.value, element);
      if (text === null) return null;
      parts.push(`${SHORT_NAMES[oid] ?? oid}=${text}`);
    }
    out.push(parts.join("+"));
  }
  return out.join(", ");
}
