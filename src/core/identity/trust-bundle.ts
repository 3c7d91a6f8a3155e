// Trust bundles: for each trust domain, the root certificates that may sign its SVIDs.
// Several roots per domain are normal during a root rotation (SPIFFE_Trust_Domain_and_Bundle.md §2).

import { RemoraError } from "../errors.ts";
import { isCa, parseCertificatesPem, uriSans } from "./certificate-info.ts";
import type { Certificate } from "./certificate-info.ts";
import { parseSpiffeId } from "./spiffe-id.ts";

/** trust domain -> its root certificates. */
export type TrustBundle = ReadonlyMap<string, readonly Certificate[]>;

/**
 * Builds a bundle from PEM roots. Each root belongs to the trust domain of its own
 * spiffe:// URI SAN when it has one (X509-SVID.md §4.2: a CA's ID has no path), else to
 * `trustDomain`.
 */
export function trustBundleFromPem(pem: string, trustDomain?: string): TrustBundle {
  const bundle = new Map<string, Certificate[]>();
  for (const cert of parseCertificatesPem(pem, "trust bundle")) {
    if (cert.basicConstraints && !isCa(cert)) {
      throw new RemoraError(
        "ERR_PEM",
        `trust bundle certificate "${cert.subject}" is not a CA certificate (cA=false); a bundle holds root CAs, not workload certificates.`,
      );
    }
    const own = uriSans(cert).find((u) => u.startsWith("spiffe://"));
    const td = own ? parseSpiffeId(own).trustDomain : trustDomain;
    if (td === undefined) {
      throw new RemoraError(
        "ERR_PEM",
        `trust bundle certificate "${cert.subject}" has no spiffe:// URI SAN and no trust domain was given for it.`,
      );
    }
    const roots = bundle.get(td) ?? [];
    roots.push(cert);
    bundle.set(td, roots);
  }
  return bundle;
}

/** A bundle holding every root of `bundles` (e.g. local roots plus federated ones). */
export function mergeTrustBundles(...bundles: TrustBundle[]): TrustBundle {
  const merged = new Map<string, Certificate[]>();
  for (const bundle of bundles) {
    for (const [td, roots] of bundle) merged.set(td, [...(merged.get(td) ?? []), ...roots]);
  }
  return merged;
}
