// PEM text <-> DER blocks, and private keys in the three forms tools write (PKCS#8, SEC1,
// PKCS#1) imported as Web Crypto keys, so keys made by openssl or cert-manager just work.

import { RemoraError } from "../errors.ts";
import { children, concat, encodeTlv, hex, readTlv, TAG } from "./der.ts";
import type { Tlv } from "./der.ts";
import { parseCertificate } from "./certificate-der.ts";
import type { Certificate } from "./certificate-der.ts";
import { importPublicKey } from "./public-key.ts";
import type { CryptoKey, ImportAlgorithm, SignAlgorithm } from "./web-crypto.ts";

export interface PemBlock {
  /** The word(s) after BEGIN, e.g. "CERTIFICATE", "EC PRIVATE KEY". */
  label: string;
  der: Uint8Array;
}

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

function pemError(source: string | undefined, problem: string): RemoraError {
  return new RemoraError("ERR_PEM", `${source ?? "PEM input"} ${problem}.`);
}

function decodeBase64(body: string, label: string, source: string | undefined): Uint8Array {
  // RFC 1421 encapsulated headers (Proc-Type: 4,ENCRYPTED) mark legacy encrypted keys.
  if (body.includes(":")) {
    throw pemError(source, `holds an encrypted ${label} block; remora reads unencrypted keys only`);
  }
  const b64 = body.replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    throw pemError(source, `has a ${label} block that is not valid base64`);
  }
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Every PEM block in `text`, in order. `source` (a file name) is used in error messages. */
export function pemBlocks(text: string, source?: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  for (const m of text.matchAll(BLOCK)) {
    const [, label = "", body = "", endLabel] = m;
    if (label !== endLabel) throw pemError(source, `has a BEGIN ${label} block closed by END ${endLabel}`);
    blocks.push({ label, der: decodeBase64(body, label, source) });
  }
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== blocks.length) throw pemError(source, "has a BEGIN line without a matching END line");
  return blocks;
}

/** The DER of every block labelled `label`; throws ERR_PEM when there is none. */
export function pemToDer(text: string, label: string, source?: string): Uint8Array[] {
  const ders = pemBlocks(text, source).filter((b) => b.label === label).map((b) => b.der);
  if (ders.length === 0) throw pemError(source, `holds no ${label} block`);
  return ders;
}

export function derToPem(der: Uint8Array, label: string): string {
  let bin = "";
  for (let i = 0; i < der.length; i += 0x8000) {
    bin += String.fromCharCode(...der.subarray(i, i + 0x8000));
  }
  const lines = btoa(bin).match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

// OID contents (hex) of the algorithms and curves remora understands.
const OID_RSA = "2a864886f70d010101"; // 1.2.840.113549.1.1.1 rsaEncryption
const OID_EC = "2a8648ce3d0201"; // 1.2.840.10045.2.1 id-ecPublicKey
const CURVES: Record<string, string> = {
  "2a8648ce3d030107": "P-256", // 1.2.840.10045.3.1.7 prime256v1
  "2b81040022": "P-384", // 1.3.132.0.34 secp384r1
};

type KeyAlgorithm = { name: "RSASSA-PKCS1-v1_5"; hash: string } | { name: "ECDSA"; namedCurve: string };

function oidOf(tlv: Tlv | undefined): string | undefined {
  return tlv?.tag === TAG.OID ? hex(tlv.value) : undefined;
}

function curveFromOid(oid: string | undefined, source: string | undefined): string {
  const curve = oid === undefined ? undefined : CURVES[oid];
  if (!curve) throw pemError(source, "holds an EC key on a curve other than P-256 or P-384");
  return curve;
}

/** PrivateKeyInfo -> the Web Crypto algorithm to import it with. */
function pkcs8Algorithm(der: Uint8Array, source: string | undefined): KeyAlgorithm {
  const outer = readTlv(der);
  const fields = outer && outer.tag === TAG.SEQUENCE ? children(outer.value) : null;
  const algId = fields?.[1];
  const parts = algId?.tag === TAG.SEQUENCE ? children(algId.value) : null;
  const oid = oidOf(parts?.[0]);
  if (oid === OID_RSA) return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  if (oid === OID_EC) return { name: "ECDSA", namedCurve: curveFromOid(oidOf(parts?.[1]), source) };
  if (!parts) throw pemError(source, "holds a PRIVATE KEY block that is not PKCS#8");
  throw pemError(source, "holds a private key that is neither RSA nor EC (ECDSA)");
}

function wrapPkcs8(algorithmId: Uint8Array, privateKey: Uint8Array): Uint8Array {
  const version0 = encodeTlv(TAG.INTEGER, new Uint8Array([0]));
  return encodeTlv(
    TAG.SEQUENCE,
    concat(version0, encodeTlv(TAG.SEQUENCE, algorithmId), encodeTlv(TAG.OCTET_STRING, privateKey)),
  );
}

function oidTlv(hexOid: string): Uint8Array {
  return encodeTlv(TAG.OID, Uint8Array.from(hexOid.match(/../g) ?? [], (h) => parseInt(h, 16)));
}

/** SEC1 ECPrivateKey (RFC 5915) -> PKCS#8, taking the curve from its parameters field. */
function sec1ToPkcs8(der: Uint8Array, source: string | undefined): { pkcs8: Uint8Array; curve: string } {
  const outer = readTlv(der);
  const fields = outer?.tag === TAG.SEQUENCE ? children(outer.value) : null;
  const secret = fields?.[1];
  if (!fields || secret?.tag !== TAG.OCTET_STRING) {
    throw pemError(source, "holds an EC PRIVATE KEY block that is not a SEC1 key");
  }
  const params = fields.find((f) => f.tag === 0xa0);
  const paramOid = params ? oidOf(readTlv(params.value) ?? undefined) : undefined;
  // Without the optional parameters, the secret's length tells the curve (32 bytes: P-256).
  const curve =
    paramOid !== undefined ? curveFromOid(paramOid, source)
    : secret.value.length === 32 ? "P-256"
    : secret.value.length === 48 ? "P-384"
    : curveFromOid(undefined, source);
  const curveOid = Object.entries(CURVES).find(([, name]) => name === curve)?.[0] ?? "";
  return { pkcs8: wrapPkcs8(concat(oidTlv(OID_EC), oidTlv(curveOid)), der), curve };
}

/** PKCS#1 RSAPrivateKey -> PKCS#8 (rsaEncryption with NULL parameters, RFC 8017 A.1). */
function pkcs1ToPkcs8(der: Uint8Array): Uint8Array {
  return wrapPkcs8(concat(oidTlv(OID_RSA), encodeTlv(TAG.NULL, new Uint8Array(0))), der);
}

export interface ImportKeyOptions {
  /** Named in error messages, e.g. "identity.key". */
  source?: string;
  /** Default false: the key can sign but never be read back. */
  extractable?: boolean;
}

/**
 * Imports the first private key in `pem` for signing: ECDSA (P-256, P-384) or RSA
 * (RSASSA-PKCS1-v1_5, SHA-256), from "PRIVATE KEY", "EC PRIVATE KEY" or "RSA PRIVATE KEY".
 */
export async function importPrivateKeyPem(pem: string, options: ImportKeyOptions = {}): Promise<CryptoKey> {
  const { source, extractable = false } = options;
  const block = pemBlocks(pem, source).find((b) => b.label.endsWith("PRIVATE KEY"));
  if (!block) {
    throw pemError(source, "holds no private key (expected PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)");
  }
  let pkcs8: Uint8Array;
  let algorithm: KeyAlgorithm;
  if (block.label === "PRIVATE KEY") {
    pkcs8 = block.der;
    algorithm = pkcs8Algorithm(pkcs8, source);
  } else if (block.label === "EC PRIVATE KEY") {
    const wrapped = sec1ToPkcs8(block.der, source);
    pkcs8 = wrapped.pkcs8;
    algorithm = { name: "ECDSA", namedCurve: wrapped.curve };
  } else if (block.label === "RSA PRIVATE KEY") {
    pkcs8 = pkcs1ToPkcs8(block.der);
    algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  } else if (block.label === "ENCRYPTED PRIVATE KEY") {
    throw pemError(source, "holds an ENCRYPTED PRIVATE KEY; remora reads unencrypted keys only");
  } else {
    throw pemError(source, `holds a ${block.label}, which remora cannot read`);
  }
  try {
    return await crypto.subtle.importKey("pkcs8", pkcs8 as Uint8Array<ArrayBuffer>, algorithm as ImportAlgorithm, extractable, ["sign"]);
  } catch (cause) {
    throw new RemoraError("ERR_PEM", `${source ?? "PEM input"} holds a ${block.label} that Web Crypto cannot import.`, {
      cause,
    });
  }
}

/** The signature algorithm a key signs with (ECDSA needs the hash named at sign time). */
export function signingAlgorithm(key: CryptoKey): { name: string; hash: string } {
  const alg = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
  if (alg.name === "ECDSA") return { name: "ECDSA", hash: alg.namedCurve === "P-384" ? "SHA-384" : "SHA-256" };
  return { name: alg.name, hash: alg.hash?.name ?? "SHA-256" };
}

/**
 * True when `keyPem`'s private key belongs to the first certificate in `certPem`, proved by
 * signing a random challenge and verifying it with the certificate's public key.
 */
export async function keyMatchesCertificate(keyPem: string, certPem: string): Promise<boolean> {
  const key = await importPrivateKeyPem(keyPem);
  const [leafDer] = pemToDer(certPem, "CERTIFICATE");
  let cert: Certificate;
  try {
    cert = parseCertificate(leafDer ?? new Uint8Array(), "certificate PEM certificate 1");
  } catch (cause) {
    throw new RemoraError("ERR_PEM", "certificate PEM holds a CERTIFICATE block that is not a valid DER X.509 certificate.", { cause });
  }
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const algorithm = signingAlgorithm(key);
  try {
    const publicKey = await importPublicKey(cert.publicKey, { ...key.algorithm, ...algorithm } as ImportAlgorithm);
    const signature = await crypto.subtle.sign(algorithm as SignAlgorithm, key, challenge);
    return await crypto.subtle.verify(algorithm as SignAlgorithm, publicKey, signature, challenge);
  } catch {
    // A key of another type or curve than the certificate's cannot be imported alike.
    return false;
  }
}
