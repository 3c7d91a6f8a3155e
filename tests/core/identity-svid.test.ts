import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isRemoraError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";
import { createRootCa, generateKeyPair } from "../../src/core/identity/ca.ts";
import { pemToDer } from "../../src/core/identity/pem.ts";
import {
  certificateInfo,
  createPeerVerifier,
  mergeTrustBundles,
  trustBundleFromPem,
  validateSvid,
} from "../../src/core/identity/svid.ts";
import { x509 } from "../../src/core/identity/x509.ts";
import { fixture } from "../fixtures/fixtures.ts";

const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";
const DAY = 86_400_000;

const f = Object.fromEntries(
  await Promise.all(
    [
      "ec-root", "ec-root2", "ec-leaf", "ec-leaf2", "rsa-root", "rsa-leaf", "int-ca", "int-leaf", "int-chain",
      "other-root", "other-leaf", "bad-two-uris", "bad-ca-leaf", "bad-dns-only",
    ].map(async (n) => [n, await fixture(`${n}.pem`)] as const),
  ),
) as Record<string, string>;
const pem = (name: string): string => f[name] ?? assert.fail(`no fixture ${name}`);
const der = (name: string): Uint8Array => pemToDer(pem(name), "CERTIFICATE")[0] ?? assert.fail(name);

// Every fixture was made in one run of make-fixtures.sh and lasts 10 years.
const NOW = certificateInfo(pem("int-leaf")).notBefore + DAY;
const clusterBundle = trustBundleFromPem(pem("ec-root"));

function refusal(code: ErrorCode, message: string | RegExp) {
  return (e: unknown) =>
    isRemoraError(e, code) && (typeof message === "string" ? e.message === message : message.test(e.message));
}

describe("validateSvid accepts", () => {
  test("an EC SVID made by openssl, as PEM or DER", async () => {
    const info = await validateSvid([pem("ec-leaf")], clusterBundle, { now: NOW });
    const summary = certificateInfo(pem("ec-leaf"));
    assert.deepEqual(info, {
      id: PAYMENTS,
      trustDomain: "cluster.local",
      serial: summary.serial,
      notBefore: summary.notBefore,
      notAfter: summary.notAfter,
      publicKeyAlgorithm: "ECDSA P-256",
    });
    assert.deepEqual(await validateSvid([der("ec-leaf")], clusterBundle, { now: NOW, expectedId: PAYMENTS }), info);
  });

  test("an RSA-2048 SVID signed by an RSA root", async () => {
    const info = await validateSvid([pem("rsa-leaf")], trustBundleFromPem(pem("rsa-root")), { now: NOW });
    assert.equal(info.id, PAYMENTS);
    assert.equal(info.publicKeyAlgorithm, "RSA 2048");
  });

  test("a chain through an intermediate CA, in one PEM or as DER blocks", async () => {
    const checkout = "spiffe://cluster.local/ns/shop/sa/checkout";
    const opts = { now: NOW, expectedId: checkout, trustDomain: "cluster.local" };
    assert.equal((await validateSvid([pem("int-chain")], clusterBundle, opts)).id, checkout);
    assert.equal((await validateSvid([der("int-leaf"), der("int-ca")], clusterBundle, opts)).id, checkout);
    // A peer may also send the root itself at the end of its chain.
    assert.equal((await validateSvid([der("int-leaf"), der("int-ca"), der("ec-root")], clusterBundle, opts)).id, checkout);
  });

  test("both roots of a bundle during a root rotation (same subject, different keys)", async () => {
    const rotating = trustBundleFromPem(pem("ec-root") + pem("ec-root2"));
    assert.equal(rotating.get("cluster.local")?.length, 2);
    assert.equal((await validateSvid([pem("ec-leaf")], rotating, { now: NOW })).id, PAYMENTS);
    assert.equal((await validateSvid([pem("ec-leaf2")], rotating, { now: NOW })).id, ORDERS);
  });

  test("a foreign trust domain when its bundle is configured and no domain is required", async () => {
    const federated = mergeTrustBundles(clusterBundle, trustBundleFromPem(pem("other-root")));
    const info = await validateSvid([pem("other-leaf")], federated, { now: NOW });
    assert.equal(info.trustDomain, "other.local");
  });
});

describe("validateSvid refuses", () => {
  const leafNotAfter = certificateInfo(pem("ec-leaf")).notAfter;
  const leafNotBefore = certificateInfo(pem("ec-leaf")).notBefore;
  const iso = (ms: number) => new Date(ms).toISOString().replace(".000Z", "Z");

  test("an expired certificate", async () => {
    await assert.rejects(
      validateSvid([pem("ec-leaf")], clusterBundle, { now: leafNotAfter + 1000 }),
      refusal("ERR_SVID_INVALID", `certificate ${PAYMENTS} expired at ${iso(leafNotAfter)}.`),
    );
    // The last second of the window is still valid.
    await validateSvid([pem("ec-leaf")], clusterBundle, { now: leafNotAfter });
  });

  test("a certificate that is not yet valid", async () => {
    await assert.rejects(
      validateSvid([pem("ec-leaf")], clusterBundle, { now: leafNotBefore - 1000 }),
      refusal("ERR_SVID_INVALID", `certificate ${PAYMENTS} is not valid before ${iso(leafNotBefore)}.`),
    );
  });

  test("a leaf from another trust domain, as an identity error", async () => {
    const both = mergeTrustBundles(clusterBundle, trustBundleFromPem(pem("other-root")));
    await assert.rejects(
      validateSvid([pem("other-leaf")], both, { now: NOW, expectedId: PAYMENTS }),
      refusal("ERR_PEER_IDENTITY", `peer presented spiffe://other.local/ns/default/sa/payments, expected ${PAYMENTS}.`),
    );
    await assert.rejects(
      validateSvid([pem("other-leaf")], both, { now: NOW, trustDomain: "cluster.local" }),
      refusal("ERR_PEER_IDENTITY", /expected an identity in trust domain cluster\.local\.$/),
    );
  });

  test("a trust domain with no bundle", async () => {
    await assert.rejects(
      validateSvid([pem("other-leaf")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", /^no trust bundle is configured for trust domain other\.local/),
    );
  });

  test("a leaf signed by a root the bundle does not hold (same subject name)", async () => {
    await assert.rejects(
      validateSvid([pem("ec-leaf2")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", `certificate ${ORDERS} is not signed by any root in the trust bundle of cluster.local (issuer "O=fixtures, CN=cluster.local root").`),
    );
  });

  test("an intermediate chain missing its intermediate", async () => {
    await assert.rejects(
      validateSvid([pem("int-leaf")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", /is not signed by any root in the trust bundle of cluster\.local/),
    );
  });

  test("a root of another trust domain signing IDs of this one", async () => {
    // The bundle is picked by the ID's trust domain (SPIFFE_Trust_Domain_and_Bundle.md §3), so
    // other.local's root cannot vouch for a cluster.local ID even though the bundle holds it.
    const rogue = await createRootCa({ trustDomain: "other.local", ttlMs: 30 * DAY, now: NOW });
    const keys = await generateKeyPair();
    const forged = await x509.X509CertificateGenerator.create({
      subject: "O=forged",
      issuer: new x509.X509Certificate(rogue.certPem).subjectName,
      notBefore: new Date(NOW - DAY),
      notAfter: new Date(NOW + DAY),
      publicKey: keys.publicKey,
      signingKey: rogue.keys.privateKey,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: PAYMENTS }])],
    });
    const bundle = mergeTrustBundles(clusterBundle, trustBundleFromPem(rogue.certPem));
    await assert.rejects(
      validateSvid([forged.toString("pem")], bundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", /not signed by any root in the trust bundle of cluster\.local/),
    );
    // The same chain is fine for other.local IDs: the forgery, not the root, is refused.
    const honest = await x509.X509CertificateGenerator.create({
      subject: "O=honest",
      issuer: new x509.X509Certificate(rogue.certPem).subjectName,
      notBefore: new Date(NOW - DAY),
      notAfter: new Date(NOW + DAY),
      publicKey: keys.publicKey,
      signingKey: rogue.keys.privateKey,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: "spiffe://other.local/x" }])],
    });
    assert.equal((await validateSvid([honest.toString("pem")], bundle, { now: NOW })).id, "spiffe://other.local/x");
  });

  test("a leaf with two URI SANs", async () => {
    await assert.rejects(
      validateSvid([pem("bad-two-uris")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", /has 2 URI SANs \(spiffe:\/\/.*, spiffe:\/\/.*\); an X\.509-SVID must have exactly one\.$/),
    );
  });

  test("a leaf with no URI SAN (DNS name only)", async () => {
    await assert.rejects(
      validateSvid([pem("bad-dns-only")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", /^certificate with subject "O=fixtures" \(serial [0-9a-f]+\) has no URI SAN/),
    );
  });

  test("a leaf that is a CA", async () => {
    await assert.rejects(
      validateSvid([pem("bad-ca-leaf")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", `certificate ${PAYMENTS} is a CA certificate (cA=true) and cannot identify a workload.`),
    );
  });

  test("a root certificate presented as a workload SVID", async () => {
    await assert.rejects(
      validateSvid([pem("ec-root")], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", "certificate spiffe://cluster.local names a trust domain, not a workload (its ID has no path)."),
    );
  });

  test("a valid SVID that is not the expected identity", async () => {
    await assert.rejects(
      validateSvid([pem("ec-leaf")], clusterBundle, { now: NOW, expectedId: ORDERS }),
      refusal("ERR_PEER_IDENTITY", `peer presented ${PAYMENTS}, expected ${ORDERS}.`),
    );
  });

  test("an empty chain and bytes that are not a certificate", async () => {
    await assert.rejects(validateSvid([], clusterBundle, { now: NOW }), refusal("ERR_SVID_INVALID", "the peer presented no certificate."));
    await assert.rejects(
      validateSvid([new Uint8Array([1, 2, 3])], clusterBundle, { now: NOW }),
      refusal("ERR_SVID_INVALID", "certificate 1 of the chain is not a valid DER X.509 certificate."),
    );
  });
});

describe("trustBundleFromPem", () => {
  test("files each root under the trust domain of its own URI SAN", () => {
    const bundle = trustBundleFromPem(pem("ec-root") + pem("other-root"), "ignored.example");
    assert.deepEqual([...bundle.keys()].sort(), ["cluster.local", "other.local"]);
  });

  test("uses the given trust domain for a root without a spiffe:// URI SAN", async () => {
    const keys = await generateKeyPair();
    const plain = await x509.X509CertificateGenerator.createSelfSigned({
      name: "CN=plain root",
      keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    assert.deepEqual([...trustBundleFromPem(plain.toString("pem"), "cluster.local").keys()], ["cluster.local"]);
    assert.throws(() => trustBundleFromPem(plain.toString("pem")), refusal("ERR_PEM", /"CN=plain root" has no spiffe:\/\/ URI SAN and no trust domain was given/));
  });

  test("refuses a workload certificate or no certificate at all", () => {
    assert.throws(() => trustBundleFromPem(pem("ec-leaf")), refusal("ERR_PEM", /is not a CA certificate \(cA=false\)/));
    assert.throws(() => trustBundleFromPem(""), refusal("ERR_PEM", "trust bundle holds no CERTIFICATE block."));
  });
});

describe("certificateInfo", () => {
  test("summarises a leaf for admin pages", () => {
    const info = certificateInfo(pem("int-chain"));
    assert.equal(info.id, "spiffe://cluster.local/ns/shop/sa/checkout");
    assert.equal(info.subject, "O=fixtures");
    assert.equal(info.issuer, "O=fixtures, CN=cluster.local intermediate");
    assert.match(info.serial, /^[0-9a-f]+$/);
    // 3650 days, as make-fixtures.sh asks.
    assert.equal(info.notAfter - info.notBefore, 3650 * DAY);
  });

  test("has no id when the certificate carries no single spiffe:// URI SAN", () => {
    assert.equal(certificateInfo(pem("bad-dns-only")).id, undefined);
    assert.equal(certificateInfo(pem("bad-two-uris")).id, undefined);
  });
});

describe("createPeerVerifier", () => {
  test("returns the peer's SPIFFE ID and refuses the wrong one", async () => {
    let now = NOW;
    const verify = createPeerVerifier(() => clusterBundle, { now: () => now }, "cluster.local");
    assert.equal(await verify([der("ec-leaf")]), PAYMENTS);
    assert.equal(await verify([der("ec-leaf")], PAYMENTS), PAYMENTS);
    // A cached success for one expected identity says nothing about another.
    await assert.rejects(verify([der("ec-leaf")], ORDERS), refusal("ERR_PEER_IDENTITY", `peer presented ${PAYMENTS}, expected ${ORDERS}.`));
    await assert.rejects(verify([der("other-leaf")]), refusal("ERR_PEER_IDENTITY", /trust domain cluster\.local/));
    // A cached success ends when the certificate expires.
    now = certificateInfo(pem("ec-leaf")).notAfter + 1;
    await assert.rejects(verify([der("ec-leaf")], PAYMENTS), refusal("ERR_SVID_INVALID", /expired at/));
  });

  test("caches by leaf until the bundle changes", async () => {
    let bundle = clusterBundle;
    const verify = createPeerVerifier(() => bundle, { now: () => NOW });
    const checkout = "spiffe://cluster.local/ns/shop/sa/checkout";
    assert.equal(await verify([der("int-leaf"), der("int-ca")]), checkout);
    // The leaf alone would not build a path; the cached verdict for this exact leaf answers.
    assert.equal(await verify([der("int-leaf")]), checkout);
    // Rotating the bundle drops every verdict: the same leaf now needs its intermediate again.
    bundle = trustBundleFromPem(pem("ec-root") + pem("ec-root2"));
    await assert.rejects(verify([der("int-leaf")]), refusal("ERR_SVID_INVALID", /not signed by any root/));
    // And a bundle without the root refuses it outright.
    bundle = trustBundleFromPem(pem("ec-root2"));
    await assert.rejects(verify([der("int-leaf"), der("int-ca")]), refusal("ERR_SVID_INVALID", /not signed by any root/));
  });
});
