// The control plane's secrets in its data directory (0700, files 0600): the root CA, the
// join-token signing key and the admin token. Made on first start, loaded on later ones.
// (With --store postgres they live encrypted in the database instead: pg/pg-secrets.ts.)

import { chmod, mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { exportJWK, exportPKCS8, importJWK, importPKCS8 } from "jose";
import { RemoraError } from "../core/errors.ts";
import { createRootCa, generateKeyPair, loadCa, type RootCa } from "../core/identity/ca.ts";
import type { CryptoKey } from "../core/identity/web-crypto.ts";
import { spiffeIdOf } from "../core/identity/certificate-info.ts";
import { parseSpiffeId } from "../core/identity/spiffe-id.ts";
import type { TokenKeys } from "./tokens.ts";
import { writeFileAtomic } from "./atomic-write.ts";

export const ROOT_CERT_FILE = "root.pem";
export const ROOT_KEY_FILE = "root-key.pem";
export const TOKEN_KEY_FILE = "token-key.pem";
export const ADMIN_TOKEN_FILE = "admin-token";
const ROOT_TTL_MS = 10 * 365 * 24 * 3_600_000;

export interface DataDir {
  ca: RootCa;
  tokenKeys: TokenKeys;
  adminToken: string;
  /** True when this start created the directory's secrets. */
  created: boolean;
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new RemoraError("ERR_FILE", `cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Writes a secret file atomically, readable by its owner only. */
export async function writeSecret(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, text, 0o600);
}

/** Refuses a root CA made for another trust domain; `where` names the file or store it came from. */
export function checkCaDomain(ca: RootCa, trustDomain: string, where: string): void {
  const caId = spiffeIdOf(ca.cert);
  const caDomain = caId === undefined ? undefined : parseSpiffeId(caId).trustDomain;
  if (caDomain !== undefined && caDomain !== trustDomain) {
    throw new RemoraError("ERR_CA", `the root CA in ${where} is for trust domain ${caDomain}, not --trust-domain ${trustDomain}.`);
  }
}

/**
 * With a shared store the secrets live in the database; DIR keeps only what the local CLI
 * reads (root.pem, admin-token), rewritten at each start. The root and token keys never touch DIR.
 */
export async function exportForCli(dir: string, rootPem: string, adminToken: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeSecret(join(dir, ROOT_CERT_FILE), rootPem);
  await writeSecret(join(dir, ADMIN_TOKEN_FILE), adminToken + "\n");
}

export async function openDataDir(dir: string, o: { trustDomain: string; now: number }): Promise<DataDir> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const files = {
    cert: join(dir, ROOT_CERT_FILE),
    key: join(dir, ROOT_KEY_FILE),
    token: join(dir, TOKEN_KEY_FILE),
    admin: join(dir, ADMIN_TOKEN_FILE),
  };
  let created = false;

  let certPem = await readOptional(files.cert);
  let keyPem = await readOptional(files.key);
  let ca: RootCa;
  if (certPem === undefined && keyPem === undefined) {
    ca = await createRootCa({ trustDomain: o.trustDomain, ttlMs: ROOT_TTL_MS, now: o.now });
    // Key first: a crash between the two writes leaves a key and no cert, refused below, not a cert without its key.
    await writeSecret(files.key, ca.keyPem);
    await writeSecret(files.cert, ca.certPem);
    created = true;
  } else if (certPem === undefined || keyPem === undefined) {
    throw new RemoraError("ERR_CA", `${dir} holds ${certPem === undefined ? ROOT_KEY_FILE : ROOT_CERT_FILE} without ${certPem === undefined ? ROOT_CERT_FILE : ROOT_KEY_FILE}; restore the missing file or use an empty directory.`);
  } else {
    ca = await loadCa(certPem, keyPem);
    checkCaDomain(ca, o.trustDomain, files.cert);
  }

  let tokenPem = await readOptional(files.token);
  if (tokenPem === undefined) {
    const pair = await generateKeyPair();
    tokenPem = await exportPKCS8(pair.privateKey);
    await writeSecret(files.token, tokenPem);
    created = true;
  }
  const privateKey = await importPKCS8(tokenPem, "ES256", { extractable: true });
  const tokenKeys: TokenKeys = { privateKey, publicKey: await publicKeyOf(privateKey) };

  let adminToken = (await readOptional(files.admin))?.trim();
  if (adminToken === undefined || adminToken === "") {
    adminToken = base64url(crypto.getRandomValues(new Uint8Array(32)));
    await writeSecret(files.admin, adminToken + "\n");
    created = true;
  }
  return { ca, tokenKeys, adminToken, created };
}

/** The public half of an EC private key, via its JWK (drop d, re-import for verify). */
export async function publicKeyOf(privateKey: CryptoKey): Promise<CryptoKey> {
  const { d: _d, key_ops: _ops, ...jwk } = await exportJWK(privateKey);
  return (await importJWK(jwk, "ES256")) as CryptoKey;
}

export function base64url(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
