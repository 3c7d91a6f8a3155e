// Reading X.509 certificates: parsing DER/PEM input, the fields SVID rules look at (URI SANs,
// basicConstraints, keyUsage), and a plain summary for admin pages and expiry metrics.

import { RemoraError } from "../errors.ts";
import { parseCertificate } from "./certificate-der.ts";
import type { Certificate } from "./certificate-der.ts";
import { pemBlocks } from "./pem.ts";

export type { Certificate } from "./certificate-der.ts";
export { KEY_USAGE } from "./certificate-der.ts";

export interface CertificateInfo {
  /** The spiffe:// URI SAN, when the certificate has exactly one. */
  id?: string;
  /** Lowercase hex. */
  serial: string;
  /** Milliseconds since the Unix epoch. */
  notBefore: number;
  notAfter: number;
  issuer: string;
  subject: string;
}

/** Parses one DER certificate; `what` names it in the error ("peer certificate 2"). */
export function parseCertificateDer(der: Uint8Array, what: string): Certificate {
  return parseCertificate(der, what);
}

/** Every CERTIFICATE block in `pem`, in order (leaf first for a chain file). */
export function parseCertificatesPem(pem: string, what = "PEM input"): Certificate[] {
  const blocks = pemBlocks(pem, what).filter((b) => b.label === "CERTIFICATE");
  if (blocks.length === 0) throw new RemoraError("ERR_PEM", `${what} holds no CERTIFICATE block.`);
  return blocks.map((b, i) => parseCertificate(b.der, `${what} certificate ${i + 1}`));
}

/** The URI SANs of `cert` (empty when it has none). */
export function uriSans(cert: Certificate): string[] {
  return [...cert.uriSans];
}

/** The SPIFFE ID when the certificate has exactly one URI SAN and it is spiffe://. */
export function spiffeIdOf(cert: Certificate): string | undefined {
  const uris = cert.uriSans;
  return uris.length === 1 && uris[0]?.startsWith("spiffe://") ? uris[0] : undefined;
}

export function isCa(cert: Certificate): boolean {
  return cert.basicConstraints?.ca === true;
}

/** keyUsage bits (KEY_USAGE), or undefined when the extension is absent. */
export function keyUsage(cert: Certificate): number | undefined {
  return cert.keyUsage;
}

export function serialHex(cert: Certificate): string {
  return cert.serial;
}

/** "ECDSA P-256", "RSA 2048", … for admin pages and SvidInfo. */
export function publicKeyAlgorithm(cert: Certificate): string {
  return cert.publicKey.summary;
}

/** A summary of the first certificate in `pem` (the leaf of a chain file). */
export function certificateInfo(pem: string): CertificateInfo {
  const [cert] = parseCertificatesPem(pem, "certificate PEM");
  if (!cert) throw new RemoraError("ERR_PEM", "certificate PEM holds no CERTIFICATE block.");
  const id = spiffeIdOf(cert);
  return {
    ...(id === undefined ? {} : { id }),
    serial: cert.serial,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    issuer: cert.issuer,
    subject: cert.subject,
  };
}
