// The control plane's secrets in PostgreSQL, so every replica shares ONE root CA and any of
// them signs: root cert + key, join-token signing key and admin token, each AES-256-GCM
// encrypted with the store key. Made once by whichever replica starts first.

import { exportPKCS8, importPKCS8 } from "jose";
import { createRootCa, generateKeyPair, loadCa } from "../../core/identity/ca.ts";
import { base64url, checkCaDomain, exportForCli, publicKeyOf, type DataDir } from "../data-dir.ts";
import type { CryptoKey } from "../../core/identity/web-crypto.ts";
import type { TokenKeys } from "../tokens.ts";
import { LOCK_SECRETS, LOCK_SPACE } from "./migrations.ts";
import type { PgStore } from "./pg-store.ts";
import { seal, unseal } from "./store-key.ts";

const ROOT_TTL_MS = 10 * 365 * 24 * 3_600_000;
const NAMES = ["root_cert", "root_key", "token_key", "admin_token"] as const;
type SecretName = (typeof NAMES)[number];

export interface PgSecretsOptions {
  trustDomain: string;
  now: number;
  /** Where the local CLI finds root.pem and admin-token (the keys are never written there). */
  dataDir?: string;
}

/** Loads the shared secrets, creating the missing ones under an advisory lock so two first starts agree on one root. */
export async function openPgSecrets(store: PgStore, key: CryptoKey, o: PgSecretsOptions): Promise<DataDir> {
  const c = await store.pool.connect();
  const plain = new Map<SecretName, string>();
  let created = false;
  try {
    await c.query("BEGIN");
    await c.query("SELECT pg_advisory_xact_lock($1, $2)", [LOCK_SPACE, LOCK_SECRETS]);
    const rows = await c.query<{ name: string; iv: Uint8Array; ciphertext: Uint8Array }>("SELECT name, iv, ciphertext FROM remora_secrets");
    for (const r of rows.rows) {
      if ((NAMES as readonly string[]).includes(r.name)) plain.set(r.name as SecretName, await unseal(key, r.name, { iv: new Uint8Array(r.iv), ciphertext: new Uint8Array(r.ciphertext) }, store.where));
    }
    const fresh = new Map<SecretName, string>();
    if (!plain.has("root_cert") || !plain.has("root_key")) {
      const ca = await createRootCa({ trustDomain: o.trustDomain, ttlMs: ROOT_TTL_MS, now: o.now });
      fresh.set("root_cert", ca.certPem);
      fresh.set("root_key", ca.keyPem);
    }
    if (!plain.has("token_key")) fresh.set("token_key", await exportPKCS8((await generateKeyPair()).privateKey));
    if (!plain.has("admin_token")) fresh.set("admin_token", base64url(crypto.getRandomValues(new Uint8Array(32))));
    for (const [name, text] of fresh) {
      const s = await seal(key, name, text);
      await c.query(
        "INSERT INTO remora_secrets (name, iv, ciphertext) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET iv = EXCLUDED.iv, ciphertext = EXCLUDED.ciphertext, created_at = now()",
        [name, s.iv, s.ciphertext],
      );
      plain.set(name, text);
      created = true;
    }
    await c.query("COMMIT");
  } catch (e) {
    await c.query("ROLLBACK").catch(() => {});
    throw e;
  } finally {
    c.release();
  }

  const ca = await loadCa(plain.get("root_cert")!, plain.get("root_key")!);
  checkCaDomain(ca, o.trustDomain, store.where);
  const privateKey = await importPKCS8(plain.get("token_key")!, "ES256", { extractable: true });
  const tokenKeys: TokenKeys = { privateKey, publicKey: await publicKeyOf(privateKey) };
  const adminToken = plain.get("admin_token")!;
  if (o.dataDir !== undefined) await exportForCli(o.dataDir, ca.certPem, adminToken);
  return { ca, tokenKeys, adminToken, created };
}
