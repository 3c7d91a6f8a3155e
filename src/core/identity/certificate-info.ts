// Reading X.509 certificates: parsing DER/PEM input, the fields SVID rules look at (URI SANs,
// basicConstraints, keyUsage), and a plain summary for admin pages and expiry metrics.

import { RemoraError } from "../errors.ts";
import { pemBlocks } from "./pem.ts";
import { x509 } from "./x509.ts";

export type Certificate = x509.X509Certificate;

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

/**
 * Parses one DER certificate; `what` names it in the error ("peer certificate 2").
 * @peculiar/x509 decodes names, validity and extensions lazily, and a failed extensions
 * decode leaves the list empty for later reads (a malformed extension would then look
 * like no extension at all): so everything read later is decoded here, once, or refused.
 */
export function parseCertificateDer(der: Uint8Array, what: string): Certificate {
  try {
    const cert = new x509.X509Certificate(der as Uint8Array<ArrayBuffer>);
    void [cert.extensions, cert.subject, cert.issuer, cert.notBefore, cert.notAfter, cert.serialNumber];
    return cert;
  } catch (cause) {
    throw new RemoraError("ERR_SVID_INVALID", `${what} is not a valid DER X.509 certificate.`, { cause });
  }
}

/** Every CERTIFICATE block in `pem`, in order (leaf first for a chain file). */
export function parseCertificatesPem(pem: string, what = "PEM input"): Certificate[] {
  const blocks = pemBlocks(pem, what).filter((b) => b.label === "CERTIFICATE");
  if (blocks.length === 0) throw new RemoraError("ERR_PEM", `${what} holds no CERTIFICATE block.`);
  return blocks.map((b, i) => parseCertificateDer(b.der, `${what} certificate ${i + 1}`));
}

/** The URI SANs of `cert` (empty when it has none). */
export function uriSans(cert: Certificate): string[] {
  let san: x509.SubjectAlternativeNameExtension | null;
  try {
    san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  } catch (cause) {
    throw new RemoraError(
      "ERR_SVID_INVALID",
      `certificate with subject "${cert.subject}" has a subjectAltName extension remora cannot parse.`,
      { cause },
    );
  }
  return san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
}

/** The SPIFFE ID when the certificate has exactly one URI SAN and it is spiffe://. */
export function spiffeIdOf(cert: Certificate): string | undefined {
  const uris = uriSans(cert);
  return uris.length === 1 && uris[0]?.startsWith("spiffe://") ? uris[0] : undefined;
}

export function isCa(cert: Certificate): boolean {
  return cert.getExtension(x509.BasicConstraintsExtension)?.ca === true;
}

/** keyUsage bits (x509.KeyUsageFlags), or undefined when the extension is absent. */
export function keyUsage(cert: Certificate): number | undefined {
  return cert.getExtension(x509.KeyUsagesExtension)?.usages;
}

export function serialHex(cert: Certificate): string {
  return cert.serialNumber.toLowerCase();
}

/** "ECDSA P-256", "RSA 2048", … for admin pages and SvidInfo. */
export function publicKeyAlgorithm(cert: Certificate): string {
  const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  if (alg.namedCurve) return `${alg.name} ${alg.namedCurve}`;
  if (alg.name.startsWith("RSA")) return alg.modulusLength ? `RSA ${alg.modulusLength}` : "RSA";
  return alg.name;
}

/** A summary of the first certificate in `pem` (the leaf of a chain file). */
export function certificateInfo(pem: string): CertificateInfo {
  const [cert] = parseCertificatesPem(pem, "certificate PEM");
  if (!cert) throw new RemoraError("ERR_PEM", "certificate PEM holds no CERTIFICATE block.");
  const id = spiffeIdOf(cert);
  return {
    ...(id === undefined ? {} : { id }),
    serial: serialHex(cert),
    notBefore: cert.notBefore.getTime(),
    notAfter: cert.notAfter.getTime(),
    issuer: cert.issuer,
    subject: cert.subject,
  };
}
