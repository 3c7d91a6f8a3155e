// Web Crypto type names for core code. The tsconfig has no DOM lib, so these are taken from
// the global values every runtime provides (typed by @types/node), never from a runtime-specific crypto module.

// `.prototype`, not InstanceType: Deno types the CryptoKey constructor as `new(): never`.
export type CryptoKey = typeof globalThis.CryptoKey.prototype;

export interface CryptoKeyPair {
  publicKey: CryptoKey;
  privateKey: CryptoKey;
}

type Subtle = typeof globalThis.crypto.subtle;
export type ImportAlgorithm = Exclude<Parameters<Subtle["importKey"]>[2], string>;
export type SignAlgorithm = Parameters<Subtle["sign"]>[0];
