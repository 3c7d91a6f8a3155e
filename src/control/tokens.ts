// Join tokens: short-lived JWTs (ES256, RFC 7519) signed by the control plane's token key,
// naming the one workload (namespace/service) whose identity their holder may obtain.

import { SignJWT, errors as joseErrors, jwtVerify } from "jose";
import type { CryptoKey } from "../core/identity/web-crypto.ts";

export const TOKEN_ISSUER = "remora-control";
export const TOKEN_AUDIENCE = "remora-join";

// A DNS-label-like name: what Kubernetes allows for namespaces and service accounts,
// and safe as a SPIFFE path segment.
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface TokenKeys {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface JoinClaims {
  namespace: string;
  service: string;
  jti: string;
  /** Milliseconds since the Unix epoch. */
  expiresAt: number;
}

export class TokenRefused extends Error {
  override name = "TokenRefused";
}

export function isValidName(name: string): boolean {
  return NAME.test(name);
}

/** A join token for namespace/service, valid ttlMs from now. */
export async function issueJoinToken(
  keys: TokenKeys,
  o: { namespace: string; service: string; ttlMs: number; now: number },
): Promise<{ token: string; expiresAt: number; jti: string }> {
  const iat = Math.floor(o.now / 1000);
  const exp = Math.floor((o.now + o.ttlMs) / 1000);
  const jti = Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
  const token = await new SignJWT({ ns: o.namespace, svc: o.service })
    .setProtectedHeader({ alg: "ES256", typ: "JWT" })
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setSubject(`${o.namespace}/${o.service}`)
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .setJti(jti)
    .sign(keys.privateKey);
  return { token, expiresAt: exp * 1000, jti };
}

/** Verifies signature, iss, aud and exp at `now`; throws TokenRefused with the reason. */
export async function verifyJoinToken(keys: TokenKeys, token: string, now: number): Promise<JoinClaims> {
  let payload;
  try {
    ({ payload } = await jwtVerify(token, keys.publicKey, {
      algorithms: ["ES256"],
      issuer: TOKEN_ISSUER,
      audience: TOKEN_AUDIENCE,
      requiredClaims: ["exp", "sub", "jti"],
      currentDate: new Date(now),
    }));
  } catch (e) {
    if (e instanceof joseErrors.JWTExpired) throw new TokenRefused("join token expired");
    if (e instanceof joseErrors.JWSSignatureVerificationFailed) throw new TokenRefused("join token signature does not verify with this control plane's token key");
    if (e instanceof joseErrors.JWTClaimValidationFailed) throw new TokenRefused(`join token claim ${e.claim} is invalid (${e.reason})`);
    throw new TokenRefused(`join token is malformed (${(e as Error).message})`);
  }
  const { ns, svc, sub, jti, exp } = payload;
  if (typeof ns !== "string" || typeof svc !== "string" || !isValidName(ns) || !isValidName(svc) || sub !== `${ns}/${svc}`) {
    throw new TokenRefused("join token claims ns, svc and sub do not name one namespace/service");
  }
  return { namespace: ns, service: svc, jti: String(jti), expiresAt: (exp ?? 0) * 1000 };
}
