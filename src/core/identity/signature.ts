// X.509 signatures with Web Crypto: which algorithm an OID names (RFC 5758 ECDSA, RFC 8017 / 4055
// RSASSA-PKCS1-v1_5, RFC 8410 Ed25519), the ECDSA DER <-> raw r||s conversion Web Crypto needs,
// verifying that an issuer signed a certificate, and signing with a key of remora's own.

import { RemoraError } from "../errors.ts";
import { childrenOf, concat, encodeTlv, oidElement, readTlv, TAG, unsignedInteger, unsignedIntegerElement } from "./der.ts";
import type { Certificate } from "./certificate-der.ts";
import { importPublicKey, OID_EC_PUBLIC_KEY, OID_ED25519, OID_RSA_ENCRYPTION } from "./public-key.ts";
import type { CryptoKey, ImportAlgorithm, SignAlgorithm } from "./web-crypto.ts";

interface SignatureScheme {
  /** Web Crypto algorithm name. */
  name: "ECDSA" | "RSASSA-PKCS1-v1_5" | "Ed25519";
  hash?: string;
  /** The SubjectPublicKeyInfo algorithm a signer's key must have. */
  keyAlgorithm: string;
}

// SHA-1 and everything else are left out on purpose: such a signature does not verify.
const SCHEMES: Record<string, SignatureScheme> = {
  "1.2.840.10045.4.3.2": { name: "ECDSA", hash: "SHA-256", keyAlgorithm: OID_EC_PUBLIC_KEY },
  "1.2.840.10045.4.3.3": { name: "ECDSA", hash: "SHA-384", keyAlgorithm: OID_EC_PUBLIC_KEY },
  "1.2.840.10045.4.3.4": { name: "ECDSA", hash: "SHA-512", keyAlgorithm: OID_EC_PUBLIC_KEY },
  "1.2.840.113549.1.1.11": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", keyAlgorithm: OID_RSA_ENCRYPTION },
  "1.2.840.113549.1.1.12": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-384", keyAlgorithm: OID_RSA_ENCRYPTION },
  "1.2.840.113549.1.1.13": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-512", keyAlgorithm: OID_RSA_ENCRYPTION },
  [OID_ED25519]: { name: "Ed25519", keyAlgorithm: OID_ED25519 },
};

const CURVE_BYTES: Record<string, number> = { "P-256": 32, "P-384": 48, "P-521": 66 };

/** Ecdsa-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } -> r||s, each `size` bytes; null if malformed. */
export function ecdsaDerToRaw(der: Uint8Array, size: number): Uint8Array | null {
  const outer = readTlv(der);
  const [r, s, extra] = (outer?.end === der.length ? childrenOf(outer, TAG.SEQUENCE) : null) ?? [];
  if (r?.tag !== TAG.INTEGER || s?.tag !== TAG.INTEGER || extra) return null;
  const out = new Uint8Array(2 * size);
  for (const [i, part] of [r, s].entries()) {
    const magnitude = unsignedInteger(part.value);
    if (!magnitude || magnitude.length > size) return null;
    out.set(magnitude, (i + 1) * size - magnitude.length);
  }
  return out;
}

/** Web Crypto's raw r||s -> the DER Ecdsa-Sig-Value X.509 carries (RFC 5758 §3.2). */
export function ecdsaRawToDer(raw: Uint8Array): Uint8Array {
  const half = raw.length / 2;
  return encodeTlv(TAG.SEQUENCE, concat(unsignedIntegerElement(raw.subarray(0, half)), unsignedIntegerElement(raw.subarray(half))));
}

// Issuer keys imported once per certificate object and algorithm: a bundle's roots verify every
// handshake's chain, and importKey is a measurable share of a verification.
const importedKeys = new WeakMap<Certificate, Map<string, Promise<CryptoKey>>>();

function issuerKey(issuer: Certificate, algorithm: ImportAlgorithm & { name: string }): Promise<CryptoKey> {
  let byAlgorithm = importedKeys.get(issuer);
  if (!byAlgorithm) importedKeys.set(issuer, (byAlgorithm = new Map()));
  const key = JSON.stringify(algorithm);
  let imported = byAlgorithm.get(key);
  if (!imported) {
    imported = importPublicKey(issuer.publicKey, algorithm);
    byAlgorithm.set(key, imported);
  }
  return imported;
}

/**
 * True when `issuer`'s key made `cert`'s signature over its TBSCertificate. An algorithm
 * remora does not verify, a mismatch between the signed and unsigned algorithm fields
 * (RFC 5280 §4.1.1.2), or a key or signature that cannot be decoded: false.
 */
export async function verifyCertificateSignature(cert: Certificate, issuer: Certificate): Promise<boolean> {
  const scheme = SCHEMES[cert.signatureAlgorithm];
  if (!scheme || cert.tbsSignatureAlgorithm !== cert.signatureAlgorithm) return false;
  const { publicKey } = issuer;
  if (publicKey.algorithm !== scheme.keyAlgorithm) return false;
  let signature = cert.signature;
  let importAlgorithm: ImportAlgorithm & { name: string };
  if (scheme.name === "ECDSA") {
    const size = publicKey.namedCurve === undefined ? undefined : CURVE_BYTES[publicKey.namedCurve];
    const raw = size === undefined ? null : ecdsaDerToRaw(signature, size);
    if (!raw) return false;
    signature = raw;
    importAlgorithm = { name: "ECDSA", namedCurve: publicKey.namedCurve! };
  } else {
    importAlgorithm = scheme.hash ? { name: scheme.name, hash: scheme.hash } : { name: scheme.name };
  }
  try {
    const key = await issuerKey(issuer, importAlgorithm);
    const verifyAlgorithm = (scheme.name === "ECDSA" ? { name: "ECDSA", hash: scheme.hash } : { name: scheme.name }) as SignAlgorithm;
    return await crypto.subtle.verify(verifyAlgorithm, key, signature as Uint8Array<ArrayBuffer>, cert.tbs as Uint8Array<ArrayBuffer>);
  } catch {
    // The issuer's key or this runtime's Web Crypto refused (a peer's bytes): it does not verify.
    return false;
  }
}

export interface Signer {
  /** The AlgorithmIdentifier element to write beside the signature. */
  algorithmIdentifier: Uint8Array;
  /** Signs `data`, returning the bytes for the signature BIT STRING. */
  sign(data: Uint8Array): Promise<Uint8Array>;
}

/** A Signer for an ECDSA (P-256, P-384) or RSASSA-PKCS1-v1_5 private key. */
export function signerFor(key: CryptoKey): Signer {
  const alg = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
  if (alg.name === "ECDSA") {
    const hash = alg.namedCurve === "P-384" ? "SHA-384" : "SHA-256";
    // RFC 5758 §3.2: the ecdsa-with-SHA* AlgorithmIdentifier has no parameters.
    const oid = hash === "SHA-384" ? "1.2.840.10045.4.3.3" : "1.2.840.10045.4.3.2";
    return {
      algorithmIdentifier: encodeTlv(TAG.SEQUENCE, oidElement(oid)),
      sign: async (data) =>
        ecdsaRawToDer(new Uint8Array(await crypto.subtle.sign({ name: "ECDSA", hash } as SignAlgorithm, key, data as Uint8Array<ArrayBuffer>))),
    };
  }
  if (alg.name === "RSASSA-PKCS1-v1_5") {
    const hash = alg.hash?.name ?? "SHA-256";
    const oid = Object.entries(SCHEMES).find(([, s]) => s.name === alg.name && s.hash === hash)?.[0] ?? "1.2.840.113549.1.1.11";
    // RFC 8017 A.2.4: the PKCS#1 v1.5 signature AlgorithmIdentifiers carry NULL parameters.
    return {
      algorithmIdentifier: encodeTlv(TAG.SEQUENCE, concat(oidElement(oid), encodeTlv(TAG.NULL, new Uint8Array(0)))),
      sign: async (data) => new Uint8Array(await crypto.subtle.sign({ name: alg.name } as SignAlgorithm, key, data as Uint8Array<ArrayBuffer>)),
    };
  }
  throw new RemoraError("ERR_CSR_INVALID", `remora cannot sign with a ${alg.name} key; use an ECDSA (P-256, P-384) or RSA key.`);
}
