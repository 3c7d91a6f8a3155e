// Key pairs for SVIDs: ECDSA P-256 made in Web Crypto, and the PKCS#8 PEM a TLS stack reads.
// Library-free, so a sidecar rotating its key does not load the CA's X.509 library.

import { derToPem } from "./pem.ts";
import type { CryptoKey, CryptoKeyPair } from "./web-crypto.ts";

const EC_P256 = { name: "ECDSA", namedCurve: "P-256" };

/** A new ECDSA P-256 key pair. The private key is extractable only so exportPrivateKeyPem can write it. */
export async function generateKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"])) as CryptoKeyPair;
}

/** The private key as PKCS#8 PEM ("PRIVATE KEY"), the form every TLS stack reads. */
export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return derToPem(new Uint8Array(await crypto.subtle.exportKey("pkcs8", key)), "PRIVATE KEY");
}
