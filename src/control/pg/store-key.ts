// The key that encrypts the control plane's secrets at rest in a shared store: 32 bytes
// from --store-key-file FILE or env REMORA_STORE_KEY (base64 or hex), used for
// AES-256-GCM through Web Crypto, each value bound to its name as additional data.

import { readFile } from "node:fs/promises";
import { RemoraError } from "../../core/errors.ts";
import type { CryptoKey } from "../../core/identity/web-crypto.ts";

export const STORE_KEY_ENV = "REMORA_STORE_KEY";
const HOW = "make one with `openssl rand -base64 32` and give every replica the same one";

/** Decodes 32 key bytes from base64 (44 chars) or hex (64 chars); `source` names the file or variable. */
export function decodeStoreKey(text: string, source: string): Uint8Array {
  const t = text.trim();
  let bytes: Uint8Array | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) {
    bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i++) bytes[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
  } else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const bin = atob(t.replace(/-/g, "+").replace(/_/g, "/").padEnd(44, "="));
    bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  if (bytes?.length !== 32) throw new RemoraError("ERR_STORE", `${source} does not hold a 32-byte key in base64 or hex; ${HOW}.`);
  return bytes;
}

/** The store key from the file if given, else the environment; refuses to go on without one. */
export async function loadStoreKey(o: { file?: string; env?: string }): Promise<CryptoKey> {
  let raw: Uint8Array;
  if (o.file !== undefined) {
    let text: string;
    try {
      text = await readFile(o.file, "utf8");
    } catch (e) {
      throw new RemoraError("ERR_STORE", `cannot read --store-key-file ${o.file}: ${(e as Error).message.replace(/\.$/, "")}.`, { cause: e });
    }
    raw = decodeStoreKey(text, `--store-key-file ${o.file}`);
  } else if (o.env !== undefined && o.env.trim() !== "") {
    raw = decodeStoreKey(o.env, STORE_KEY_ENV);
  } else {
    throw new RemoraError("ERR_STORE", `a PostgreSQL store needs a key to encrypt the CA and token keys: pass --store-key-file FILE or set ${STORE_KEY_ENV} (${HOW}).`);
  }
  return importStoreKey(raw);
}

export function importStoreKey(raw: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, { name: "AES-GCM" }, false, ["encrypt", "decrypt"]);
}

export interface Sealed {
  iv: Uint8Array;
  ciphertext: Uint8Array;
}

/** AES-256-GCM with a fresh 96-bit IV; `name` is the additional data, so a value cannot be moved to another row. */
export async function seal(key: CryptoKey, name: string, text: string): Promise<Sealed> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(name) }, key, new TextEncoder().encode(text));
  return { iv, ciphertext: new Uint8Array(ct) };
}

/** Decrypts what `seal` made; throws ERR_STORE when the key is not the one it was sealed with. */
export async function unseal(key: CryptoKey, name: string, sealed: Sealed, where: string): Promise<string> {
  try {
    const pt = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.iv as Uint8Array<ArrayBuffer>, additionalData: new TextEncoder().encode(name) },
      key,
      sealed.ciphertext as Uint8Array<ArrayBuffer>,
    );
    return new TextDecoder().decode(pt);
  } catch (e) {
    throw new RemoraError("ERR_STORE", `the store key does not decrypt secret "${name}" in ${where}; give this replica the same --store-key-file or ${STORE_KEY_ENV} as the others.`, { cause: e });
  }
}
