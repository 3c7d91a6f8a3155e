// Reading PKCS#10 certificate signing requests on the control plane: the CA takes the public
// key from a CSR whose signature verifies. The IDs a CSR asks for are reported, never trusted:
// the CA certifies the identity the control plane decided. (Writing one is csr-create.ts.)

import { RemoraError } from "../errors.ts";
import { pemBlocks } from "./pem.ts";
import type { CryptoKey } from "./web-crypto.ts";
import { x509 } from "./x509.ts";

export { createCsr } from "./csr-create.ts";

export interface ParsedCsr {
  publicKey: CryptoKey;
  /** URI SANs the requester asked for (informational only). */
  requestedIds: string[];
}

// A CSR is a few hundred bytes; refusing large input keeps a hostile client from making
// the control plane parse megabytes of ASN.1.
const MAX_CSR_CHARS = 16 * 1024;

function csrError(problem: string, cause?: unknown): RemoraError {
  return new RemoraError("ERR_CSR_INVALID", `certificate signing request ${problem}.`, { cause });
}

/** Parses a PEM CSR and checks its self-signature; a bad one is RemoraError("ERR_CSR_INVALID"). */
export async function parseCsr(pem: string): Promise<ParsedCsr> {
  if (pem.length > MAX_CSR_CHARS) throw csrError(`is larger than ${MAX_CSR_CHARS} characters`);
  let blocks;
  try {
    blocks = pemBlocks(pem, "certificate signing request");
  } catch (cause) {
    throw csrError("is not valid PEM", cause);
  }
  // "NEW CERTIFICATE REQUEST" is the label older tools (Netscape, some openssl builds) write.
  const block = blocks.find((b) => b.label === "CERTIFICATE REQUEST" || b.label === "NEW CERTIFICATE REQUEST");
  if (!block) throw csrError("holds no CERTIFICATE REQUEST PEM block");
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(block.der as Uint8Array<ArrayBuffer>);
  } catch (cause) {
    throw csrError("is not a valid PKCS#10 structure", cause);
  }
  let signatureOk = false;
  try {
    signatureOk = await csr.verify();
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) throw csrError("has a signature that does not verify with its own public key");
  let publicKey: CryptoKey;
  try {
    publicKey = await csr.publicKey.export();
  } catch (cause) {
    throw csrError("has a public key that is neither ECDSA (P-256, P-384) nor RSA", cause);
  }
  let requestedIds: string[] = [];
  try {
    const ext = csr.getExtension("2.5.29.17");
    const san = ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : undefined;
    requestedIds = san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
  } catch (cause) {
    throw csrError("has a subjectAltName extension remora cannot parse", cause);
  }
  return { publicKey, requestedIds };
}
