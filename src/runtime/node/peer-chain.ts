// Reads the certificate chain a TLS peer presented, in the shape PeerVerifier takes
// (DER, leaf first), after OpenSSL has already checked it against the trust bundle.

import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import { RemoraError } from "../../core/errors.ts";

export interface PeerChain {
  chainDer: Uint8Array[];
  /** Leaf serial, hex as OpenSSL prints it. */
  serial?: string;
  /** The leaf's URI SANs, for error messages only (the verifier decides). */
  uris: string[];
}

export function readPeerChain(socket: TLSSocket): PeerChain {
  if (typeof socket.getPeerCertificate !== "function") {
    // Bun 1.4's node:https server hands out sockets without it (serve uses node:tls instead).
    throw new RemoraError("ERR_SVID_INVALID", "this runtime's TLS socket cannot show the peer certificate, so the peer cannot be verified");
  }
  const chainDer: Uint8Array[] = [];
  // An empty object when the peer sent no certificate.
  const leaf: Partial<DetailedPeerCertificate> = socket.getPeerCertificate(true);
  if (!leaf.raw) return { chainDer, uris: [] };
  const seen = new Set<string>();
  let cert = leaf as DetailedPeerCertificate | undefined;
  // Node links each certificate to its issuer, ending at a self-issued root that links to
  // itself. The root is left out: the verifier anchors the chain in its own bundle.
  while (cert?.raw && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    const issuer: DetailedPeerCertificate | undefined = cert.issuerCertificate;
    const selfIssued = !issuer || issuer === cert || issuer.fingerprint256 === cert.fingerprint256;
    if (selfIssued && chainDer.length > 0) break;
    chainDer.push(new Uint8Array(cert.raw));
    cert = selfIssued ? undefined : issuer;
  }
  const uris = (leaf.subjectaltname ?? "")
    .split(", ")
    .filter((san) => san.startsWith("URI:"))
    .map((san) => san.slice(4));
  return { chainDer, serial: leaf.serialNumber, uris };
}
