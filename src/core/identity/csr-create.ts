// Writing a PKCS#10 certificate signing request (RFC 2986) with der.ts and Web Crypto, so the
// sidecar's key rotation needs no X.509 library; the control plane reads it with parseCsr.

import { concat, encodeTlv, oidElement, TAG, bitStringElement } from "./der.ts";
import { signerFor } from "./signature.ts";
import { parseSpiffeId } from "./spiffe-id.ts";
import type { CryptoKeyPair } from "./web-crypto.ts";
import { derToPem } from "./pem.ts";

const OID_ORGANIZATION = "2.5.4.10";
const OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"; // PKCS#9 (RFC 2985 §5.4.2)
const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const URI_NAME = 0x86; // GeneralName uniformResourceIdentifier [6] IA5String

const seq = (...parts: Uint8Array[]) => encodeTlv(TAG.SEQUENCE, concat(...parts));
const set = (...parts: Uint8Array[]) => encodeTlv(TAG.SET, concat(...parts));
const ascii = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0));

/** A PEM CSR for `keys`, signed by its private key, asking for `spiffeId` as its URI SAN. */
export async function createCsr(options: { keys: CryptoKeyPair; spiffeId: string }): Promise<string> {
  // A valid SPIFFE ID is ASCII (the spec's character set), so it fits an IA5String as is.
  parseSpiffeId(options.spiffeId);
  const signer = signerFor(options.keys.privateKey);
  const subject = seq(set(seq(oidElement(OID_ORGANIZATION), encodeTlv(TAG.PRINTABLE_STRING, ascii("remora")))));
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", options.keys.publicKey));
  // The SAN is not critical: the subject (O=remora) is not empty (RFC 5280 §4.2.1.6).
  const san = seq(oidElement(OID_SUBJECT_ALT_NAME), encodeTlv(TAG.OCTET_STRING, seq(encodeTlv(URI_NAME, ascii(options.spiffeId)))));
  const attributes = encodeTlv(0xa0, seq(oidElement(OID_EXTENSION_REQUEST), set(seq(san))));
  const info = seq(encodeTlv(TAG.INTEGER, new Uint8Array([0])), subject, spki, attributes);
  const signature = await signer.sign(info);
  return derToPem(seq(info, signer.algorithmIdentifier, bitStringElement(signature)), "CERTIFICATE REQUEST");
}
