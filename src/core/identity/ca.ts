// A small X.509 CA for the control plane and dev tooling: ECDSA P-256 keys made in Web Crypto,
// a self-signed root for a trust domain, and SVIDs shaped as X509-SVID.md §4 asks.
// The CA signs the identity it is told, never one read from a CSR: the control plane decides
// identity from a join token or the caller's current SVID.

import { RemoraError } from "../errors.ts";
import { isCa, parseCertificateDer, parseCertificatesPem, spiffeIdOf, uriSans } from "./certificate-info.ts";
import type { Certificate } from "./certificate-info.ts";
import { exportPrivateKeyPem, generateKeyPair } from "./key-pair.ts";
import { importPrivateKeyPem, keyMatchesCertificate, signingAlgorithm } from "./pem.ts";
import { parseSpiffeId, trustDomainId } from "./spiffe-id.ts";
import type { CryptoKey, CryptoKeyPair, ImportAlgorithm } from "./web-crypto.ts";
import { x509 } from "./x509.ts";

// The sidecar imports these from their own modules; they stay exported here for the control plane.
export { createCsr, parseCsr } from "./csr.ts";
export type { ParsedCsr } from "./csr.ts";
export { exportPrivateKeyPem, generateKeyPair } from "./key-pair.ts";

const EC_P256 = { name: "ECDSA", namedCurve: "P-256" };
// Certificates start a minute early so a peer whose clock is slightly behind accepts them.
const CLOCK_SKEW_MS = 60_000;

export interface RootCa {
  certPem: string;
  /** PKCS#8 PEM. */
  keyPem: string;
  cert: Certificate;
  keys: CryptoKeyPair;
}

/** What issueSvid needs of a CA: its certificate and a key that signs. */
export interface SigningCa {
  cert: Certificate;
  keys: { privateKey: CryptoKey };
}

/** The library's view of a certificate remora parsed, for the generator's issuer fields. */
function libraryCertificate(cert: Certificate): x509.X509Certificate {
  return new x509.X509Certificate(cert.der as Uint8Array<ArrayBuffer>);
}

/** A random positive 128-bit serial (RFC 5280 §4.1.2.2; CA/B forum asks for ≥ 64 random bits). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export interface CreateRootCaOptions {
  trustDomain: string;
  /** Lifetime in milliseconds. */
  ttlMs: number;
  /** Milliseconds since the Unix epoch. */
  now: number;
  /** Subject, RFC 4514 style. Default "O=remora, CN=<trustDomain> root CA". */
  name?: string;
}

/** A self-signed root for `trustDomain`: cA, keyCertSign+cRLSign (critical), URI SAN spiffe://<td>. */
export async function createRootCa(options: CreateRootCaOptions): Promise<RootCa> {
  const { trustDomain, ttlMs, now } = options;
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: options.name ?? `O=remora, CN=${trustDomain} root CA`,
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + ttlMs),
    keys,
    signingAlgorithm: { ...EC_P256, hash: "SHA-256" },
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: trustDomainId(trustDomain) }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    certPem: cert.toString("pem") + "\n",
    keyPem: await exportPrivateKeyPem(keys.privateKey),
    cert: parseCertificateDer(new Uint8Array(cert.rawData), "new root CA certificate"),
    keys,
  };
}

/** A CA from PEM files (made by createRootCa, openssl, …): the first certificate and its key. */
export async function loadCa(certPem: string, keyPem: string): Promise<RootCa> {
  const [cert] = parseCertificatesPem(certPem, "CA certificate");
  if (!cert) throw new RemoraError("ERR_CA", "CA certificate holds no CERTIFICATE block.");
  if (!isCa(cert)) {
    throw new RemoraError("ERR_CA", `CA certificate "${cert.subject}" is not a CA (basicConstraints cA=true is required).`);
  }
  if (!(await keyMatchesCertificate(keyPem, certPem))) {
    throw new RemoraError("ERR_CA", `CA key does not match CA certificate "${cert.subject}".`);
  }
  const privateKey = await importPrivateKeyPem(keyPem, { source: "CA key" });
  const publicKey = await libraryCertificate(cert).publicKey.export(
    { ...privateKey.algorithm, ...signingAlgorithm(privateKey) } as ImportAlgorithm,
    ["verify"],
  );
  return { certPem, keyPem, cert, keys: { privateKey, publicKey } };
}

export interface IssueSvidOptions {
  ca: SigningCa;
  /** The identity to certify, decided by the caller (never taken from a CSR). */
  spiffeId: string;
  publicKey: CryptoKey;
  /** Requested lifetime in milliseconds; capped at the CA's own expiry. */
  ttlMs: number;
  /** Milliseconds since the Unix epoch. */
  now: number;
  /**
   * Extra DNS and IP SANs beside the one URI SAN (X509-SVID.md §2 allows other SAN types),
   * for a server that clients without SPIFFE support also reach, like the control plane.
   */
  dnsNames?: string[];
  ipAddresses?: string[];
}

/** Issues a leaf X.509-SVID and returns it as PEM. */
export async function issueSvid(options: IssueSvidOptions): Promise<string> {
  const { ca, spiffeId, publicKey, ttlMs, now } = options;
  const { trustDomain, path } = parseSpiffeId(spiffeId);
  if (path === "") {
    throw new RemoraError("ERR_CA", `cannot issue an SVID for ${spiffeId}: a workload ID needs a path (X509-SVID.md §3.1).`);
  }
  if (!isCa(ca.cert)) throw new RemoraError("ERR_CA", `issuer "${ca.cert.subject}" is not a CA certificate.`);
  const caId = uriSans(ca.cert).length > 0 ? spiffeIdOf(ca.cert) : undefined;
  if (caId !== undefined && parseSpiffeId(caId).trustDomain !== trustDomain) {
    throw new RemoraError("ERR_CA", `CA ${caId} cannot issue ${spiffeId}: it signs only its own trust domain.`);
  }
  const caNotAfter = ca.cert.notAfter;
  if (now >= caNotAfter) {
    throw new RemoraError("ERR_CA", `CA certificate "${ca.cert.subject}" expired at ${new Date(caNotAfter).toISOString()}.`);
  }
  const notBefore = Math.max(now - CLOCK_SKEW_MS, ca.cert.notBefore);
  const notAfter = Math.min(now + ttlMs, caNotAfter);

  const rsa = publicKey.algorithm.name.startsWith("RSA");
  const usages = x509.KeyUsageFlags.digitalSignature | (rsa ? x509.KeyUsageFlags.keyEncipherment : 0);
  const caCert = libraryCertificate(ca.cert);
  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: "O=remora",
    issuer: caCert.subjectName,
    notBefore: new Date(notBefore),
    notAfter: new Date(notAfter),
    publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: signingAlgorithm(ca.keys.privateKey),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(usages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: "url", value: spiffeId },
          ...(options.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
          ...(options.ipAddresses ?? []).map((value) => ({ type: "ip" as const, value })),
        ],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      caKeyId ? new x509.AuthorityKeyIdentifierExtension(caKeyId) : await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return cert.toString("pem") + "\n";
}
