// One DER X.509 certificate (RFC 5280 §4.1) read into a plain object, every field remora looks
// at decoded once at parse time: a malformed field refuses the certificate, never reads as absent.

import { RemoraError } from "../errors.ts";
import {
  children,
  childrenOf,
  decodeBitString,
  decodeOid,
  decodeSmallInteger,
  decodeTime,
  hex,
  readTlv,
  TAG,
} from "./der.ts";
import type { Tlv } from "./der.ts";
import { formatName } from "./distinguished-name.ts";
import { readPublicKeyInfo } from "./public-key.ts";
import type { PublicKeyInfo } from "./public-key.ts";

/** RFC 5280 §4.2.1.3 bits, with the numeric values of @peculiar/x509's KeyUsageFlags. */
export const KEY_USAGE = {
  digitalSignature: 1,
  nonRepudiation: 2,
  keyEncipherment: 4,
  dataEncipherment: 8,
  keyAgreement: 16,
  keyCertSign: 32,
  cRLSign: 64,
  encipherOnly: 128,
  decipherOnly: 256,
} as const;

export const OID_SUBJECT_ALT_NAME = "2.5.29.17";
export const OID_BASIC_CONSTRAINTS = "2.5.29.19";
export const OID_KEY_USAGE = "2.5.29.15";

export interface CertificateExtension {
  oid: string;
  critical: boolean;
  /** The extnValue OCTET STRING's content. */
  value: Uint8Array;
}

export interface BasicConstraints {
  ca: boolean;
  pathLength?: number;
}

export interface Certificate {
  /** The whole certificate. */
  readonly der: Uint8Array;
  /** The TBSCertificate element: the bytes the issuer signed. */
  readonly tbs: Uint8Array;
  /** signatureAlgorithm OID (outside the signed part). */
  readonly signatureAlgorithm: string;
  /** The signature algorithm OID named inside the signed part (RFC 5280 §4.1.2.3: must match). */
  readonly tbsSignatureAlgorithm: string;
  /** signatureValue bytes (for ECDSA, a DER Ecdsa-Sig-Value). */
  readonly signature: Uint8Array;
  /** Lowercase hex, as @peculiar/x509's serialNumber (a sign octet before a high bit dropped). */
  readonly serial: string;
  /** Names as text ("O=remora, CN=…") and as their DER elements. */
  readonly issuer: string;
  readonly subject: string;
  readonly issuerDer: Uint8Array;
  readonly subjectDer: Uint8Array;
  /** Milliseconds since the Unix epoch. */
  readonly notBefore: number;
  readonly notAfter: number;
  readonly extensions: readonly CertificateExtension[];
  /** uniformResourceIdentifier names of subjectAltName, in order (empty without the extension). */
  readonly uriSans: readonly string[];
  /** Undefined when the extension is absent. */
  readonly basicConstraints?: BasicConstraints;
  /** KEY_USAGE bits; undefined when the extension is absent. */
  readonly keyUsage?: number;
  readonly publicKey: PublicKeyInfo;
}

/** Throws the certificate's ERR_SVID_INVALID, naming `problem` in its cause. */
type Fail = (problem: string) => never;

/** The one element `value` holds (an extension's extnValue), or undefined when it holds anything else. */
function single(value: Uint8Array): Tlv | undefined {
  const tlv = readTlv(value);
  return tlv && tlv.end === value.length ? tlv : undefined;
}

// GeneralName CHOICE tags (RFC 5280 §4.2.1.6): otherName, rfc822Name, dNSName, x400Address,
// directoryName, ediPartyName, uniformResourceIdentifier, iPAddress, registeredID.
const GENERAL_NAME_TAGS = new Set([0xa0, 0x81, 0x82, 0xa3, 0xa4, 0xa5, 0x86, 0x87, 0x88]);
const URI_TAG = 0x86;

function elements(tlv: Tlv | undefined, tag: number, fail: Fail, what: string): Tlv[] {
  return childrenOf(tlv, tag) ?? fail(`has a malformed ${what}`);
}

function oid(tlv: Tlv | undefined, fail: Fail, what: string): string {
  return (tlv?.tag === TAG.OID ? decodeOid(tlv.value) : null) ?? fail(`has a malformed ${what}`);
}

function time(tlv: Tlv | undefined, fail: Fail, what: string): number {
  return (tlv ? decodeTime(tlv) : null) ?? fail(`has a malformed ${what} time`);
}

/** A Name as text and as its whole DER element (`container` is what `tlv` was read from). */
function name(container: Uint8Array, tlv: Tlv | undefined, fail: Fail, what: string): { text: string; der: Uint8Array } {
  const text = tlv?.tag === TAG.SEQUENCE ? formatName(tlv.value) : null;
  if (text === null || !tlv) return fail(`has a malformed ${what} name`);
  return { text, der: container.subarray(tlv.start, tlv.end) };
}

/** GeneralNames (RFC 5280 §4.2.1.6): the uniformResourceIdentifier [6] IA5String entries. */
function uriNames(value: Uint8Array, fail: Fail): string[] {
  const names = elements(single(value), TAG.SEQUENCE, fail, "subjectAltName extension");
  const uris: string[] = [];
  for (const n of names) {
    if (!GENERAL_NAME_TAGS.has(n.tag)) fail("has a malformed subjectAltName extension");
    if (n.tag === URI_TAG) {
      let uri = "";
      for (const b of n.value) {
        // No URI holds a control character (RFC 3986 §2), and one would split the one-line
        // errors and log lines that quote the URI (found by the fuzzer).
        if (b < 0x20 || b === 0x7f) fail("has a malformed subjectAltName extension");
        uri += String.fromCharCode(b);
      }
      uris.push(uri);
    }
  }
  return uris;
}

/** BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER OPTIONAL }. */
function basicConstraints(value: Uint8Array, fail: Fail): BasicConstraints {
  const bad = () => fail("has a malformed basicConstraints extension");
  const fields = childrenOf(single(value), TAG.SEQUENCE) ?? bad();
  let i = 0;
  let ca = false;
  if (fields[i]?.tag === TAG.BOOLEAN) {
    const v = fields[i++]!.value;
    if (v.length !== 1) bad();
    ca = v[0] !== 0;
  }
  let pathLength: number | undefined;
  if (fields[i]?.tag === TAG.INTEGER) pathLength = decodeSmallInteger(fields[i++]!.value) ?? bad();
  if (i !== fields.length) bad();
  return pathLength === undefined ? { ca } : { ca, pathLength };
}

/** KeyUsage BIT STRING -> flags: bit 0 (the first byte's high bit) is digitalSignature = 1. */
function keyUsage(value: Uint8Array, fail: Fail): number {
  const tlv = single(value);
  const bits = tlv?.tag === TAG.BIT_STRING ? decodeBitString(tlv.value) : null;
  if (!bits) return fail("has a malformed keyUsage extension");
  let flags = 0;
  const count = Math.min(bits.bytes.length * 8 - bits.unusedBits, 31);
  for (let bit = 0; bit < count; bit++) {
    if (bits.bytes[bit >> 3]! & (0x80 >> (bit & 7))) flags |= 1 << bit;
  }
  return flags;
}

/** [3] EXPLICIT Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension. */
function extensions(explicit: Tlv, fail: Fail): CertificateExtension[] {
  const out: CertificateExtension[] = [];
  for (const ext of elements(single(explicit.value), TAG.SEQUENCE, fail, "extensions list")) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }.
    const [id, second, third, extra] = elements(ext, TAG.SEQUENCE, fail, "extension");
    const extOid = oid(id, fail, "extension identifier");
    const critical = second?.tag === TAG.BOOLEAN ? second : undefined;
    const octets = critical ? third : second;
    if (octets?.tag !== TAG.OCTET_STRING || (critical ? extra : third) || (critical && critical.value.length !== 1)) {
      fail(`has a malformed extension ${extOid}`);
    }
    // RFC 5280 §4.2: "A certificate MUST NOT include more than one instance of a particular extension."
    if (out.some((e) => e.oid === extOid)) fail(`has extension ${extOid} twice`);
    out.push({ oid: extOid, critical: critical !== undefined && critical.value[0] !== 0, value: octets!.value });
  }
  return out;
}

/**
 * Parses one DER certificate; `what` names it in errors ("peer certificate 2"). Throws
 * RemoraError("ERR_SVID_INVALID") for anything malformed, including trailing bytes; its
 * cause says which field.
 */
export function parseCertificate(der: Uint8Array, what: string): Certificate {
  // The message stays the one sentence callers and tests know; which field failed is the cause.
  const fail: Fail = (problem) => {
    throw new RemoraError("ERR_SVID_INVALID", `${what} is not a valid DER X.509 certificate.`, {
      cause: new Error(`the certificate ${problem}`),
    });
  };
  const outer = readTlv(der);
  if (!outer || outer.end !== der.length) return fail("is not one complete DER element");
  const [tbsTlv, sigAlg, sigValue, extra] = elements(outer, TAG.SEQUENCE, fail, "Certificate structure");
  if (!tbsTlv || extra) return fail("has a malformed Certificate structure");
  const signatureAlgorithm = oid(elements(sigAlg, TAG.SEQUENCE, fail, "signature algorithm")[0], fail, "signature algorithm");
  const signature = (sigValue?.tag === TAG.BIT_STRING ? decodeBitString(sigValue.value) : null) ?? fail("has a malformed signature");

  const fields = elements(tbsTlv, TAG.SEQUENCE, fail, "TBSCertificate");
  // version [0] EXPLICIT INTEGER DEFAULT v1: only v1, v2 and v3 exist.
  if (fields[0]?.tag === 0xa0) {
    const [version, more] = children(fields[0].value) ?? [];
    const n = version?.tag === TAG.INTEGER ? decodeSmallInteger(version.value) : null;
    if (n === null || n > 2 || more) fail("has a malformed version");
    fields.shift();
  }
  const [serialTlv, tbsSigAlg, issuerTlv, validity, subjectTlv, spkiTlv, ...rest] = fields;
  if (serialTlv?.tag !== TAG.INTEGER || serialTlv.value.length === 0) return fail("has a malformed serial number");
  // As @peculiar/x509 prints it: the sign octet before a high bit is dropped, other zeros kept.
  let serialBytes = serialTlv.value;
  if (serialBytes.length > 1 && serialBytes[0] === 0 && serialBytes[1]! > 0x7f) serialBytes = serialBytes.subarray(1);
  const tbsSignatureAlgorithm = oid(elements(tbsSigAlg, TAG.SEQUENCE, fail, "signature algorithm")[0], fail, "signature algorithm");
  const issuer = name(tbsTlv.value, issuerTlv, fail, "issuer");
  const [notBeforeTlv, notAfterTlv, validityExtra] = elements(validity, TAG.SEQUENCE, fail, "validity");
  if (validityExtra) fail("has a malformed validity");
  const notBefore = time(notBeforeTlv, fail, "notBefore");
  const notAfter = time(notAfterTlv, fail, "notAfter");
  const subject = name(tbsTlv.value, subjectTlv, fail, "subject");
  const publicKey =
    (spkiTlv?.tag === TAG.SEQUENCE ? readPublicKeyInfo(tbsTlv.value.subarray(spkiTlv.start, spkiTlv.end)) : null) ??
    fail("has a malformed subject public key");

  // issuerUniqueID [1] and subjectUniqueID [2] (RFC 5280 §4.1.2.8, unused), then extensions [3].
  let order = 0;
  let extensionsTlv: Tlv | undefined;
  for (const f of rest) {
    const rank = f.tag === 0x81 || f.tag === 0xa1 ? 1 : f.tag === 0x82 || f.tag === 0xa2 ? 2 : f.tag === 0xa3 ? 3 : 0;
    if (rank <= order) fail("has an unexpected field after its public key");
    order = rank;
    if (rank === 3) extensionsTlv = f;
  }
  const exts = extensionsTlv ? extensions(extensionsTlv, fail) : [];
  const find = (id: string) => exts.find((e) => e.oid === id)?.value;
  const san = find(OID_SUBJECT_ALT_NAME);
  const bc = find(OID_BASIC_CONSTRAINTS);
  const ku = find(OID_KEY_USAGE);

  return {
    der,
    tbs: outer.value.subarray(tbsTlv.start, tbsTlv.end),
    signatureAlgorithm,
    tbsSignatureAlgorithm,
    signature: signature.bytes,
    serial: hex(serialBytes),
    issuer: issuer.text,
    subject: subject.text,
    issuerDer: issuer.der,
    subjectDer: subject.der,
    notBefore,
    notAfter,
    extensions: exts,
    uriSans: san ? uriNames(san, fail) : [],
    ...(bc ? { basicConstraints: basicConstraints(bc, fail) } : {}),
    ...(ku === undefined ? {} : { keyUsage: keyUsage(ku, fail) }),
    publicKey,
  };
}
