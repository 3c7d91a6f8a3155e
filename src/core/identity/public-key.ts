// A certificate's SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): which algorithm and size it is,
// for admin pages and SvidInfo, and importing it into Web Crypto to verify signatures.

import { childrenOf, decodeBitString, decodeOid, readTlv, TAG } from "./der.ts";
import type { CryptoKey, ImportAlgorithm } from "./web-crypto.ts";

export const OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1";
export const OID_RSASSA_PSS = "1.2.840.113549.1.1.10";
export const OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1";
export const OID_ED25519 = "1.3.101.112";

// RFC 5480 §2.1.1.1 named curves, by the Web Crypto names @peculiar/x509 gives them.
const CURVES: Record<string, string> = {
  "1.2.840.10045.3.1.7": "P-256",
  "1.3.132.0.34": "P-384",
  "1.3.132.0.35": "P-521",
  "1.3.132.0.10": "K-256",
  // RFC 5639 brainpool curves: 1.3.36.3.3.2.8.1.1.{1..14}, r1 then t1 for each size.
  ...Object.fromEntries(
    [160, 192, 224, 256, 320, 384, 512].flatMap((size, i) => [
      [`1.3.36.3.3.2.8.1.1.${2 * i + 1}`, `brainpoolP${size}r1`],
      [`1.3.36.3.3.2.8.1.1.${2 * i + 2}`, `brainpoolP${size}t1`],
    ]),
  ),
};

// RFC 8410 §3 keys, named as the library names them.
const EDWARDS: Record<string, string> = {
  [OID_ED25519]: "Ed25519",
  "1.3.101.113": "EdDSA Ed448",
  "1.3.101.110": "X25519",
  "1.3.101.111": "ECDH-ES X448",
};

export interface PublicKeyInfo {
  /** The whole SubjectPublicKeyInfo element, as importKey("spki") takes it. */
  spki: Uint8Array;
  /** Algorithm OID (rsaEncryption, id-ecPublicKey, id-Ed25519, …). */
  algorithm: string;
  /** The Web Crypto curve for an EC key ("P-256"). */
  namedCurve?: string;
  /** "ECDSA P-256", "RSA 2048", "Ed25519", or the algorithm OID for anything else. */
  summary: string;
}

/** Reads a SubjectPublicKeyInfo element; null when malformed. */
export function readPublicKeyInfo(spki: Uint8Array): PublicKeyInfo | null {
  const [algId, key, extra] = childrenOf(readTlv(spki) ?? undefined, TAG.SEQUENCE) ?? [];
  const [oidTlv, params] = childrenOf(algId, TAG.SEQUENCE) ?? [];
  if (!key || key.tag !== TAG.BIT_STRING || extra || oidTlv?.tag !== TAG.OID) return null;
  const algorithm = decodeOid(oidTlv.value);
  const bits = decodeBitString(key.value);
  if (algorithm === null || !bits) return null;

  if (algorithm === OID_RSA_ENCRYPTION) {
    // RFC 8017 A.1.1 RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }.
    const [modulus, exponent] = childrenOf(readTlv(bits.bytes) ?? undefined, TAG.SEQUENCE) ?? [];
    if (modulus?.tag !== TAG.INTEGER || exponent?.tag !== TAG.INTEGER) return null;
    // The library's count: bytes after one leading zero octet, times eight.
    const length = (modulus.value[0] === 0 ? modulus.value.length - 1 : modulus.value.length) * 8;
    return { spki, algorithm, summary: `RSA ${length}` };
  }
  if (algorithm === OID_EC_PUBLIC_KEY) {
    const curveOid = params?.tag === TAG.OID ? decodeOid(params.value) : null;
    if (curveOid === null) return null;
    const namedCurve = CURVES[curveOid];
    // The library names a key on a curve it does not know by its algorithm OID alone.
    return namedCurve ? { spki, algorithm, namedCurve, summary: `ECDSA ${namedCurve}` } : { spki, algorithm, summary: algorithm };
  }
  // An RSASSA-PSS key carries no modulus length in the library's reading.
  if (algorithm === OID_RSASSA_PSS) return { spki, algorithm, summary: "RSA" };
  return { spki, algorithm, summary: EDWARDS[algorithm] ?? algorithm };
}

/** The key as Web Crypto `algorithm` for verifying; throws what importKey throws. */
export function importPublicKey(info: PublicKeyInfo, algorithm: ImportAlgorithm): Promise<CryptoKey> {
  return crypto.subtle.importKey("spki", info.spki as Uint8Array<ArrayBuffer>, algorithm, false, ["verify"]);
}
