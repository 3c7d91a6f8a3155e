// Development PKI shared by `remora certs` and `remora demo`: a root CA for one trust
// domain and an SVID per service (spiffe://<td>/ns/<ns>/sa/<service>). Production
// identities come from the control plane; this is for examples and tests.

import type { TlsMaterial } from "../runtime/types.ts";
import { createRootCa, generateKeyPair, exportPrivateKeyPem, issueSvid } from "../core/identity/ca.ts";
import { certificateInfo } from "../core/identity/svid.ts";
import { workloadId } from "../core/identity/spiffe-id.ts";

export type RootCa = Awaited<ReturnType<typeof createRootCa>>;

export interface DevPki {
  ca: RootCa;
  rootSerial: string;
  svids: Record<string, TlsMaterial>;
}

export async function mintSvid(ca: RootCa, trustDomain: string, namespace: string, service: string, ttlMs: number, now = Date.now()): Promise<TlsMaterial> {
  const keys = await generateKeyPair();
  const certPem = await issueSvid({ ca, spiffeId: workloadId(trustDomain, namespace, service), publicKey: keys.publicKey, ttlMs, now });
  return { certPem, keyPem: await exportPrivateKeyPem(keys.privateKey), bundlePem: ca.certPem };
}

export async function createDemoPki(trustDomain: string, services: string[], namespace = "default", ttlMs = 24 * 3600_000): Promise<DevPki> {
  const now = Date.now();
  const ca = await createRootCa({ trustDomain, ttlMs: 30 * 24 * 3600_000, now });
  const svids: Record<string, TlsMaterial> = {};
  for (const s of services) svids[s] = await mintSvid(ca, trustDomain, namespace, s, ttlMs, now);
  return { ca, rootSerial: certificateInfo(ca.certPem).serial, svids };
}
