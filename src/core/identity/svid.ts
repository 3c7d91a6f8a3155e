// X.509-SVID validation as X509-SVID.md §5 describes it: leaf shape, trust bundle chosen by
// the ID's trust domain, RFC 5280-style path to one of its roots, then the expected identity.

import { RemoraError } from "../errors.ts";
import {
  isCa,
  KEY_USAGE,
  keyUsage,
  parseCertificateDer,
  parseCertificatesPem,
  publicKeyAlgorithm,
  serialHex,
  uriSans,
} from "./certificate-info.ts";
import type { Certificate } from "./certificate-info.ts";
import { hex } from "./der.ts";
import { verifyCertificateSignature } from "./signature.ts";
import { parseSpiffeId } from "./spiffe-id.ts";
import type { TrustBundle } from "./trust-bundle.ts";

export { certificateInfo } from "./certificate-info.ts";
export type { CertificateInfo } from "./certificate-info.ts";
export { trustBundleFromPem, mergeTrustBundles } from "./trust-bundle.ts";
export type { TrustBundle } from "./trust-bundle.ts";

export interface SvidInfo {
  id: string;
  trustDomain: string;
  /** Lowercase hex. */
  serial: string;
  /** Milliseconds since the Unix epoch. */
  notBefore: number;
  notAfter: number;
  /** e.g. "ECDSA P-256", "RSA 2048". */
  publicKeyAlgorithm: string;
}

export interface ValidateSvidOptions {
  /** Milliseconds since the Unix epoch (from the injected clock). */
  now: number;
  /** Refuse any other SPIFFE ID (exact match). */
  expectedId?: string;
  /** Refuse IDs of any other trust domain. */
  trustDomain?: string;
}

/** SvidInfo plus the window in which every certificate of the verified path is valid. */
export interface VerifiedSvid extends SvidInfo {
  pathNotBefore: number;
  pathNotAfter: number;
}

// RFC 5280 §4.2: a certificate with a critical extension the validator does not process
// must be refused. Name constraints (2.5.29.30) are among them: remora does not enforce them.
const UNDERSTOOD_EXTENSIONS = new Set([
  "2.5.29.19", // basicConstraints
  "2.5.29.15", // keyUsage
  "2.5.29.37", // extKeyUsage
  "2.5.29.17", // subjectAltName
  "2.5.29.14", // subjectKeyIdentifier
  "2.5.29.35", // authorityKeyIdentifier
]);
const MAX_PATH_LENGTH = 8;
const FORBIDDEN_LEAF_USAGES: [number, string][] = [
  [KEY_USAGE.keyCertSign, "keyCertSign"],
  [KEY_USAGE.cRLSign, "cRLSign"],
];

function invalid(message: string): RemoraError {
  return new RemoraError("ERR_SVID_INVALID", message);
}

/** ISO 8601 without milliseconds when they are zero, as certificates carry whole seconds. */
function iso(ms: number): string {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

function toCertificates(chain: readonly (Uint8Array | string)[]): Certificate[] {
  const certs: Certificate[] = [];
  chain.forEach((item, i) => {
    if (typeof item === "string") certs.push(...parseCertificatesPem(item, `certificate ${i + 1} of the chain`));
    else certs.push(parseCertificateDer(item, `certificate ${i + 1} of the chain`));
  });
  if (certs.length === 0) throw invalid("the peer presented no certificate.");
  return certs;
}

/** X509-SVID.md §5.2: the leaf's own rules, giving its SPIFFE ID. */
function leafSpiffeId(leaf: Certificate): { id: string; trustDomain: string } {
  const name = `certificate with subject "${leaf.subject}" (serial ${serialHex(leaf)})`;
  const uris = uriSans(leaf);
  if (uris.length === 0) throw invalid(`${name} has no URI SAN, so it carries no SPIFFE ID.`);
  if (uris.length > 1) {
    throw invalid(`${name} has ${uris.length} URI SANs (${uris.join(", ")}); an X.509-SVID must have exactly one.`);
  }
  const id = uris[0] ?? "";
  if (!id.startsWith("spiffe://")) throw invalid(`${name} has URI SAN ${id}, which is not a spiffe:// ID.`);
  let trustDomain: string;
  let path: string;
  try {
    ({ trustDomain, path } = parseSpiffeId(id));
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.replace(/\.$/, "") : String(cause);
    throw new RemoraError("ERR_SVID_INVALID", `${name} has an invalid SPIFFE ID: ${reason}.`, { cause });
  }
  if (path === "") throw invalid(`certificate ${id} names a trust domain, not a workload (its ID has no path).`);
  if (isCa(leaf)) throw invalid(`certificate ${id} is a CA certificate (cA=true) and cannot identify a workload.`);
  const usages = keyUsage(leaf) ?? 0;
  for (const [flag, label] of FORBIDDEN_LEAF_USAGES) {
    if (usages & flag) throw invalid(`certificate ${id} has key usage ${label}, which a workload SVID must not have.`);
  }
  return { id, trustDomain };
}

function checkValidity(cert: Certificate, role: string, now: number): void {
  const { notBefore, notAfter } = cert;
  if (now > notAfter) throw invalid(`${role} expired at ${iso(notAfter)}.`);
  if (now < notBefore) throw invalid(`${role} is not valid before ${iso(notBefore)}.`);
}

function checkCriticalExtensions(cert: Certificate, role: string): void {
  for (const ext of cert.extensions) {
    if (ext.critical && !UNDERSTOOD_EXTENSIONS.has(ext.oid)) {
      throw invalid(`${role} has critical extension ${ext.oid}, which remora does not handle.`);
    }
  }
}

/** RFC 5280 §6.1.4 (k, l, n): an issuer must be a CA allowed to sign certificates, within pathLen. */
function checkIssuer(issuer: Certificate, role: string, intermediatesBelow: number): void {
  const bc = issuer.basicConstraints;
  if (!bc?.ca) throw invalid(`${role} is not a CA certificate (basicConstraints cA=true is required).`);
  const usages = keyUsage(issuer);
  if (usages !== undefined && !(usages & KEY_USAGE.keyCertSign)) {
    throw invalid(`${role} lacks key usage keyCertSign, so it may not sign certificates.`);
  }
  if (bc.pathLength !== undefined && intermediatesBelow > bc.pathLength) {
    throw invalid(`${role} allows ${bc.pathLength} intermediate CA(s) below it (pathLen), the chain has ${intermediatesBelow}.`);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

async function signedBy(cert: Certificate, issuer: Certificate): Promise<boolean> {
  // RFC 5280 §7.1 compares names; the DER comparison covers the usual case of the CA's own
  // bytes copied into the issuer field, the text one names encoded alike up to string type.
  if (!sameBytes(cert.issuerDer, issuer.subjectDer) && cert.issuer !== issuer.subject) return false;
  return await verifyCertificateSignature(cert, issuer);
}

/**
 * Builds a path leaf -> intermediates (any order) -> a root of `roots`, checking signatures,
 * validity windows and CA constraints. Returns the path, root last.
 */
async function buildPath(
  leaf: Certificate,
  intermediates: Certificate[],
  roots: readonly Certificate[],
  id: string,
  trustDomain: string,
  now: number,
): Promise<Certificate[]> {
  const path = [leaf];
  const used = new Set<Certificate>();
  let current = leaf;
  while (path.length <= MAX_PATH_LENGTH) {
    const below = path.length - 1;
    for (const root of roots) {
      if (!(await signedBy(current, root))) continue;
      const role = `root CA "${root.subject}" of the chain of ${id}`;
      checkIssuer(root, role, below);
      checkCriticalExtensions(root, role);
      checkValidity(root, role, now);
      path.push(root);
      return path;
    }
    let next: Certificate | undefined;
    for (const candidate of intermediates) {
      if (!used.has(candidate) && (await signedBy(current, candidate))) {
        next = candidate;
        break;
      }
    }
    if (!next) {
      const what = current === leaf ? `certificate ${id}` : `intermediate CA "${current.subject}" of ${id}`;
      throw invalid(`${what} is not signed by any root in the trust bundle of ${trustDomain} (issuer "${current.issuer}").`);
    }
    const role = `intermediate CA "${next.subject}" in the chain of ${id}`;
    checkIssuer(next, role, below);
    checkCriticalExtensions(next, role);
    checkValidity(next, role, now);
    used.add(next);
    path.push(next);
    current = next;
  }
  throw invalid(`the chain of ${id} is longer than ${MAX_PATH_LENGTH} certificates.`);
}

function identityMismatch(id: string, expected: string): RemoraError {
  return new RemoraError("ERR_PEER_IDENTITY", `peer presented ${id}, expected ${expected}.`);
}

/** validateSvid, also returning the window in which the whole verified path is valid. */
export async function verifySvid(
  chain: readonly (Uint8Array | string)[],
  bundle: TrustBundle,
  opts: ValidateSvidOptions,
): Promise<VerifiedSvid> {
  const [leaf, ...intermediates] = toCertificates(chain);
  if (!leaf) throw invalid("the peer presented no certificate.");
  const { id, trustDomain } = leafSpiffeId(leaf);

  // Refuse a foreign trust domain before looking for its bundle: the answer is no either way,
  // and "expected X" tells the operator more than "no bundle for Y".
  const expectedDomain = opts.trustDomain ?? (opts.expectedId ? safeTrustDomain(opts.expectedId) : undefined);
  if (expectedDomain !== undefined && trustDomain !== expectedDomain) {
    throw identityMismatch(id, opts.expectedId ?? `an identity in trust domain ${expectedDomain}`);
  }

  const leafRole = `certificate ${id}`;
  checkCriticalExtensions(leaf, leafRole);
  checkValidity(leaf, leafRole, opts.now);
  // SPIFFE_Trust_Domain_and_Bundle.md §3: only the bundle of the ID's own trust domain counts.
  const roots = bundle.get(trustDomain);
  if (!roots || roots.length === 0) {
    throw invalid(`no trust bundle is configured for trust domain ${trustDomain}, so ${leafRole} cannot be verified.`);
  }
  const path = await buildPath(leaf, intermediates, roots, id, trustDomain, opts.now);

  if (opts.expectedId !== undefined && id !== opts.expectedId) throw identityMismatch(id, opts.expectedId);
  return {
    id,
    trustDomain,
    serial: serialHex(leaf),
    notBefore: leaf.notBefore,
    notAfter: leaf.notAfter,
    publicKeyAlgorithm: publicKeyAlgorithm(leaf),
    pathNotBefore: Math.max(...path.map((c) => c.notBefore)),
    pathNotAfter: Math.min(...path.map((c) => c.notAfter)),
  };
}

function safeTrustDomain(id: string): string | undefined {
  try {
    return parseSpiffeId(id).trustDomain;
  } catch {
    return undefined;
  }
}

/**
 * Validates an X.509-SVID chain (DER or PEM, leaf first) against `bundle` at `opts.now`.
 * Throws RemoraError "ERR_SVID_INVALID" (chain, validity, shape) or "ERR_PEER_IDENTITY"
 * (a valid SVID of the wrong trust domain or not `opts.expectedId`).
 */
export async function validateSvid(
  chain: readonly (Uint8Array | string)[],
  bundle: TrustBundle,
  opts: ValidateSvidOptions,
): Promise<SvidInfo> {
  const { id, trustDomain, serial, notBefore, notAfter, publicKeyAlgorithm } = await verifySvid(chain, bundle, opts);
  return { id, trustDomain, serial, notBefore, notAfter, publicKeyAlgorithm };
}

// createPeerVerifier: the PeerVerifier that runtime adapters call on every mTLS handshake.
// A success is cached per (leaf certificate, expected identity) until the verified path
// expires, so a returning peer costs one SHA-256 of its leaf, not a chain validation.

interface CachedResult {
  id: string;
  validFrom: number;
  validUntil: number;
}

const MAX_CACHED = 4096;

/** Same shape as PeerVerifier in src/runtime/types.ts (core does not import the runtime layer). */
export type SvidPeerVerifier = (chainDer: Uint8Array[], expectedIdentity?: string) => Promise<string>;

export function createPeerVerifier(
  getBundle: () => TrustBundle,
  clock: { now(): number },
  trustDomain?: string,
): SvidPeerVerifier {
  const cache = new Map<string, CachedResult>();
  let cachedFor: TrustBundle | undefined;

  return async (chainDer, expectedIdentity) => {
    const bundle = getBundle();
    // A new bundle (root rotation, a root removed) invalidates every earlier verdict.
    if (bundle !== cachedFor) {
      cache.clear();
      cachedFor = bundle;
    }
    const now = clock.now();
    const leaf = chainDer[0];
    const key = leaf
      ? `${hex(new Uint8Array(await crypto.subtle.digest("SHA-256", leaf as Uint8Array<ArrayBuffer>)))} ${expectedIdentity ?? ""}`
      : undefined;
    const hit = key === undefined ? undefined : cache.get(key);
    if (hit && now >= hit.validFrom && now <= hit.validUntil) return hit.id;

    const svid = await verifySvid(chainDer, bundle, {
      now,
      ...(expectedIdentity === undefined ? {} : { expectedId: expectedIdentity }),
      ...(trustDomain === undefined ? {} : { trustDomain }),
    });
    if (key !== undefined) {
      if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value as string);
      cache.set(key, { id: svid.id, validFrom: svid.pathNotBefore, validUntil: svid.pathNotAfter });
    }
    return svid.id;
  };
}
