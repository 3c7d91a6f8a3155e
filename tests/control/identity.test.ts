// Join tokens and identity issuing: the identity comes from the token or the presented
// SVID, never from the CSR; forged, expired and unauthenticated requests are refused and logged.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SignJWT } from "jose";
import { generateKeyPair } from "../../src/core/identity/ca.ts";
import { derToPem, pemToDer } from "../../src/core/identity/pem.ts";
import { certificateInfo } from "../../src/core/identity/certificate-info.ts";
import { issueJoinToken, verifyJoinToken } from "../../src/control/tokens.ts";
import { csrFor, id, setup, T0 } from "./support.ts";

async function token(ctx: Awaited<ReturnType<typeof setup>>, service: string, ttl = "1h"): Promise<string> {
  const res = await ctx.admin("POST", "/v1/tokens", { body: { service, ttl } });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { token: string; expires_at: string };
  assert.equal(body.expires_at, new Date(T0 + 3_600_000).toISOString());
  return body.token;
}

describe("join tokens", () => {
  test("issued by the admin API and verified with the token key", async () => {
    const ctx = await setup();
    const claims = await verifyJoinToken(ctx.tokenKeys, await token(ctx, "payments"), ctx.clock.now());
    assert.equal(claims.namespace, "default");
    assert.equal(claims.service, "payments");
  });

  test("expired, forged and wrong-audience tokens are refused with the reason", async () => {
    const ctx = await setup();
    const t = await issueJoinToken(ctx.tokenKeys, { namespace: "default", service: "payments", ttlMs: 60_000, now: T0 });
    await assert.rejects(verifyJoinToken(ctx.tokenKeys, t.token, T0 + 61_000), /expired/);
    const other = await generateKeyPair();
    const forged = await issueJoinToken(other, { namespace: "default", service: "payments", ttlMs: 60_000, now: T0 });
    await assert.rejects(verifyJoinToken(ctx.tokenKeys, forged.token, T0), /signature/);
    const wrongAud = await new SignJWT({ ns: "default", svc: "payments" })
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer("remora-control")
      .setAudience("something-else")
      .setSubject("default/payments")
      .setJti("x")
      .setExpirationTime(Math.floor(T0 / 1000) + 60)
      .sign(ctx.tokenKeys.privateKey);
    await assert.rejects(verifyJoinToken(ctx.tokenKeys, wrongAud, T0), /aud/);
  });

  test("the admin API refuses a token request without the admin token, or with a bad name", async () => {
    const ctx = await setup();
    assert.equal((await ctx.call("POST", "/v1/tokens", { body: { service: "payments" } })).status, 401);
    assert.equal((await ctx.call("POST", "/v1/tokens", { body: { service: "payments" }, token: "guess" })).status, 401);
    const bad = await ctx.admin("POST", "/v1/tokens", { body: { service: "Pay_ments" } });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /service/);
    const badTtl = await ctx.admin("POST", "/v1/tokens", { body: { service: "payments", ttl: "soon" } });
    assert.equal(badTtl.status, 400);
    assert.equal(ctx.logs.filter((l) => l.msg === "credential refused").length, 2);
  });
});

describe("POST /v1/identity", () => {
  test("a join token gets the token's identity even when the CSR asks for another", async () => {
    const ctx = await setup();
    const t = await token(ctx, "payments");
    const { csr } = await csrFor(id("default", "orders"));
    const res = await ctx.call("POST", "/v1/identity", { token: t, body: { csr } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { id: string; cert: string; bundle: string; not_after: string };
    assert.equal(body.id, id("default", "payments"));
    const info = certificateInfo(body.cert);
    assert.equal(info.id, id("default", "payments"));
    assert.equal(body.not_after, new Date(T0 + 3_600_000).toISOString());
    assert.equal(body.bundle, ctx.ca.certPem);
    assert.ok(ctx.logs.some((l) => l.msg.startsWith("CSR asked for another identity")));
  });

  test("an expired, forged or missing credential is refused with 401 and logged with the peer", async () => {
    const ctx = await setup();
    const { csr } = await csrFor(id("default", "payments"));
    const expired = await issueJoinToken(ctx.tokenKeys, { namespace: "default", service: "payments", ttlMs: 1_000, now: T0 - 10_000 });
    const forged = await issueJoinToken(await generateKeyPair(), { namespace: "default", service: "payments", ttlMs: 60_000, now: T0 });
    for (const t of [expired.token, forged.token, "not-a-jwt", undefined]) {
      const res = await ctx.call("POST", "/v1/identity", { body: { csr }, ...(t === undefined ? {} : { token: t }) });
      assert.equal(res.status, 401);
      assert.equal(((await res.json()) as { code: string }).code, "ERR_AUTH");
    }
    const refused = ctx.logs.filter((l) => l.msg === "credential refused");
    assert.equal(refused.length, 4);
    assert.ok(refused.every((l) => l.obj.peer === "192.0.2.9:40000" && typeof l.obj.reason === "string"));
    assert.match(String(refused[0]!.obj.reason), /expired/);
  });

  test("renewal with the current SVID keeps the SVID's identity", async () => {
    const ctx = await setup();
    const { csr } = await csrFor(id("default", "orders"));
    const res = await ctx.call("POST", "/v1/identity", { peer: id("default", "payments"), body: { csr } });
    assert.equal(res.status, 200);
    assert.equal(certificateInfo(((await res.json()) as { cert: string }).cert).id, id("default", "payments"));
  });

  test("a CSR whose signature does not verify is refused with 400", async () => {
    const ctx = await setup();
    const { csr } = await csrFor(id("default", "payments"));
    const der = pemToDer(csr, "CERTIFICATE REQUEST")[0]!;
    der[der.length - 5] = der[der.length - 5]! ^ 0xff; // inside the signature value
    const broken = derToPem(der, "CERTIFICATE REQUEST");
    const res = await ctx.call("POST", "/v1/identity", { peer: id("default", "payments"), body: { csr: broken } });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string };
    assert.equal(body.code, "ERR_CSR_INVALID");
  });

  test("GET /v1/bundle needs no credentials", async () => {
    const ctx = await setup();
    const res = await ctx.call("GET", "/v1/bundle");
    assert.deepEqual(await res.json(), { trust_domain: "cluster.local", bundle: ctx.ca.certPem });
  });
});
