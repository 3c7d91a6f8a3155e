// SPIFFE IDs (spiffe://<trust-domain>/<path>): parsing with the rules of SPIFFE-ID.md §2,
// and the Kubernetes-style workload ID remora issues (spiffe://td/ns/<ns>/sa/<sa>).

import { RemoraError } from "../errors.ts";

export interface SpiffeId {
  /** Lowercase host part, e.g. "cluster.local". */
  trustDomain: string;
  /** "" for a trust domain's own ID, else "/seg/seg…" (case-sensitive). */
  path: string;
}

const PREFIX = "spiffe://";
// SPIFFE-ID.md §2.3: IDs up to 2048 bytes must be accepted; the host part is at most 255.
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN_BYTES = 255;
const TRUST_DOMAIN_CHARS = /^[a-z0-9._-]+$/;
const SEGMENT_CHARS = /^[a-zA-Z0-9._-]+$/;

function bad(id: string, problem: string): RemoraError {
  return new RemoraError("ERR_SPIFFE_ID", `SPIFFE ID ${JSON.stringify(id)} ${problem}.`);
}

/** Parses and validates a SPIFFE ID; throws RemoraError("ERR_SPIFFE_ID") naming the bad part. */
export function parseSpiffeId(id: string): SpiffeId {
  if (new TextEncoder().encode(id).length > MAX_ID_BYTES) {
    throw bad(id.slice(0, 40) + "…", `is longer than ${MAX_ID_BYTES} bytes`);
  }
  if (!id.startsWith(PREFIX)) throw bad(id, `must start with "${PREFIX}" (lowercase scheme)`);
  if (id.includes("?")) throw bad(id, "must not have a query (?…)");
  if (id.includes("#")) throw bad(id, "must not have a fragment (#…)");
  if (id.includes("%")) throw bad(id, "must not use percent-encoding");

  const rest = id.slice(PREFIX.length);
  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);

  if (trustDomain === "") throw bad(id, "has an empty trust domain");
  if (trustDomain.includes("@")) throw bad(id, "must not have userinfo (user@) in its trust domain");
  if (trustDomain.includes(":")) throw bad(id, "must not have a port in its trust domain");
  if (trustDomain !== trustDomain.toLowerCase()) throw bad(id, "has a trust domain that is not lowercase");
  if (!TRUST_DOMAIN_CHARS.test(trustDomain)) {
    throw bad(id, "has a trust domain with characters outside a-z 0-9 . - _");
  }
  if (trustDomain.length > MAX_TRUST_DOMAIN_BYTES) {
    throw bad(id, `has a trust domain longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  }

  if (path !== "") {
    // path starts with "/", so the first split element is always "".
    const segments = path.split("/").slice(1);
    for (const segment of segments) {
      if (segment === "") {
        throw bad(id, path.endsWith("/") ? "must not end with /" : "has an empty path segment (//)");
      }
      if (segment === "." || segment === "..") throw bad(id, `has a "${segment}" path segment`);
      if (!SEGMENT_CHARS.test(segment)) {
        throw bad(id, `has path segment "${segment}" with characters outside a-z A-Z 0-9 . - _`);
      }
    }
  }
  return { trustDomain, path };
}

/** True when `id` is a valid SPIFFE ID. */
export function isSpiffeId(id: string): boolean {
  try {
    parseSpiffeId(id);
    return true;
  } catch {
    return false;
  }
}

/** The SPIFFE ID of a trust domain itself (what a CA certificate carries, no path). */
export function trustDomainId(trustDomain: string): string {
  const id = PREFIX + trustDomain;
  parseSpiffeId(id);
  return id;
}

/** "spiffe://<td>/ns/<namespace>/sa/<serviceAccount>" (Istio's convention), validated. */
export function workloadId(trustDomain: string, namespace: string, serviceAccount: string): string {
  const id = `${PREFIX}${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
  parseSpiffeId(id);
  return id;
}
