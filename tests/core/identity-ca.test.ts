import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRemoraError } from "../../src/core/errors.ts";
import type { ErrorCode } from "../../src/core/errors.ts";
import {
  createCsr,
  createRootCa,
  exportPrivateKeyPem,
  generateKeyPair,
  issueSvid,
  loadCa,
  parseCsr,
} from "../../src/core/identity/ca.ts";
import { derToPem, importPrivateKeyPem, keyMatchesCertificate, pemToDer } from "../../src/core/identity/pem.ts";
import { certificateInfo, trustBundleFromPem, validateSvid } from "../../src/core/identity/svid.ts";
import { x509 } from "../../src/core/identity/x509.ts";
import { fixture } from "../fixtures/fixtures.ts";

const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";
const DAY = 86_400_000;
// A fixed instant on a whole second: X.509 times carry seconds only.
const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);

function refusal(code: ErrorCode, message: RegExp) {
  return (e: unknown) => isRemoraError(e, code) && message.test(e.message);
}

const ca = await createRootCa({ trustDomain: "cluster.local", ttlMs: 365 * DAY, now: NOW });
const bundle = trustBundleFromPem(ca.certPem);

describe("createRootCa", () => {
  test("makes a self-signed P-256 root for the trust domain", async () => {
    const cert = new x509.X509Certificate(ca.certPem);
    assert.equal(cert.subject, "O=remora, CN=cluster.local root CA");
    assert.equal(cert.issuer, cert.subject);
    assert.equal(await cert.verify({ signatureOnly: true }), true);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    assert.equal(bc?.ca, true);
    assert.equal(bc?.critical, true);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    assert.equal(ku?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    assert.equal(ku?.critical, true);
    assert.deepEqual(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [
      { type: "url", value: "spiffe://cluster.local" },
    ]);
    assert.equal(cert.notAfter.getTime(), NOW + 365 * DAY);
    assert.equal(cert.notBefore.getTime(), NOW - 60_000);
    assert.deepEqual((cert.publicKey.algorithm as { namedCurve?: string }).namedCurve, "P-256");
    assert.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
    assert.equal(await keyMatchesCertificate(ca.keyPem, ca.certPem), true);
  });

  test("gives every root a fresh key and a random serial of about 128 bits", async () => {
    const other = await createRootCa({ trustDomain: "cluster.local", ttlMs: DAY, now: NOW, name: "CN=second" });
    assert.notEqual(certificateInfo(other.certPem).serial, certificateInfo(ca.certPem).serial);
    assert.ok(certificateInfo(ca.certPem).serial.replace(/^0+/, "").length >= 28);
    assert.equal(certificateInfo(other.certPem).subject, "CN=second");
    assert.equal(await keyMatchesCertificate(other.keyPem, ca.certPem), false);
  });
});

describe("CA round trip", () => {
  test("CSR -> SVID carries the CA-chosen identity, not the one the CSR asked for", async () => {
    const keys = await generateKeyPair();
    const csrPem = await createCsr({ keys, spiffeId: ORDERS });
    const csr = await parseCsr(csrPem);
    assert.deepEqual(csr.requestedIds, [ORDERS]);
    const certPem = await issueSvid({ ca, spiffeId: PAYMENTS, publicKey: csr.publicKey, ttlMs: DAY, now: NOW });

    const info = await validateSvid([certPem], bundle, { now: NOW, expectedId: PAYMENTS, trustDomain: "cluster.local" });
    assert.equal(info.id, PAYMENTS);
    assert.equal(info.notBefore, NOW - 60_000);
    assert.equal(info.notAfter, NOW + DAY);
    await assert.rejects(validateSvid([certPem], bundle, { now: NOW, expectedId: ORDERS }), /peer presented .*payments, expected .*orders/);
    // The private key, written as PKCS#8 PEM, belongs to the issued certificate.
    const keyPem = await exportPrivateKeyPem(keys.privateKey);
    assert.equal(await keyMatchesCertificate(keyPem, certPem), true);
  });

  test("an SVID has the X509-SVID.md §4 leaf shape", async () => {
    const keys = await generateKeyPair();
    const cert = new x509.X509Certificate(
      await issueSvid({ ca, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: DAY, now: NOW }),
    );
    assert.equal(cert.subject, "O=remora");
    assert.equal(cert.issuer, ca.cert.subject);
    const bc = cert.getExtension(x509.BasicConstraintsExtension);
    assert.equal(bc?.ca, false);
    assert.equal(bc?.critical, true);
    const ku = cert.getExtension(x509.KeyUsagesExtension);
    assert.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature);
    assert.equal(ku?.critical, true);
    assert.deepEqual([...(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])], [
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    assert.deepEqual(cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.toJSON(), [{ type: "url", value: PAYMENTS }]);
    const aki = cert.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
    assert.equal(aki, new x509.X509Certificate(ca.certPem).getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  });

  test("an RSA subject key also gets keyEncipherment", async () => {
    const rsaCert = new x509.X509Certificate(await fixture("rsa-leaf.pem"));
    const publicKey = await rsaCert.publicKey.export({ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, ["verify"]);
    const cert = new x509.X509Certificate(await issueSvid({ ca, spiffeId: PAYMENTS, publicKey, ttlMs: DAY, now: NOW }));
    assert.equal(
      cert.getExtension(x509.KeyUsagesExtension)?.usages,
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
    );
    assert.equal((await validateSvid([cert.toString("pem")], bundle, { now: NOW })).publicKeyAlgorithm, "RSA 2048");
  });

  test("an SVID never outlives its CA", async () => {
    const keys = await generateKeyPair();
    const late = NOW + 364 * DAY;
    const certPem = await issueSvid({ ca, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: 30 * DAY, now: late });
    assert.equal(certificateInfo(certPem).notAfter, ca.cert.notAfter);
  });

  test("refuses to issue what would not be a valid SVID", async () => {
    const { publicKey } = await generateKeyPair();
    const issue = (spiffeId: string, now = NOW) => issueSvid({ ca, spiffeId, publicKey, ttlMs: DAY, now });
    await assert.rejects(issue("spiffe://cluster.local"), refusal("ERR_CA", /needs a path/));
    await assert.rejects(issue("spiffe://other.local/ns/a/sa/b"), refusal("ERR_CA", /CA spiffe:\/\/cluster\.local cannot issue spiffe:\/\/other\.local\/ns\/a\/sa\/b/));
    await assert.rejects(issue("spiffe://cluster.local/ns/a/"), refusal("ERR_SPIFFE_ID", /must not end with/));
    await assert.rejects(issue(PAYMENTS, NOW + 366 * DAY), refusal("ERR_CA", /expired at/));
  });
});

describe("parseCsr", () => {
  test("reads a CSR made by openssl", async () => {
    const csr = await parseCsr(await fixture("ec-leaf.csr"));
    assert.deepEqual(csr.requestedIds, [PAYMENTS]);
    assert.equal(csr.publicKey.algorithm.name, "ECDSA");
    // The CSR's key is the key of ec-leaf.pem: a CA-issued cert for it matches ec-leaf.key.
    const certPem = await issueSvid({ ca, spiffeId: PAYMENTS, publicKey: csr.publicKey, ttlMs: DAY, now: NOW });
    assert.equal(await keyMatchesCertificate(await fixture("ec-leaf.key"), certPem), true);
  });

  test("refuses a CSR whose signature does not verify", async () => {
    const keys = await generateKeyPair();
    const der = pemToDer(await createCsr({ keys, spiffeId: PAYMENTS }), "CERTIFICATE REQUEST")[0]!;
    const tampered = der.slice();
    tampered[tampered.length - 1]! ^= 0x01;
    await assert.rejects(
      parseCsr(derToPem(tampered, "CERTIFICATE REQUEST")),
      refusal("ERR_CSR_INVALID", /^certificate signing request has a signature that does not verify with its own public key\.$/),
    );
  });

  test("refuses input that is not a CSR", async () => {
    await assert.rejects(parseCsr(await fixture("ec-leaf.pem")), refusal("ERR_CSR_INVALID", /holds no CERTIFICATE REQUEST PEM block/));
    await assert.rejects(parseCsr(derToPem(new Uint8Array([0x30, 0x00]), "CERTIFICATE REQUEST")), refusal("ERR_CSR_INVALID", /not a valid PKCS#10/));
    await assert.rejects(parseCsr("x".repeat(20_000)), refusal("ERR_CSR_INVALID", /larger than/));
  });
});

describe("loadCa", () => {
  test("an openssl-made CA with a SEC1 key issues SVIDs that validate", async () => {
    const rootPem = await fixture("ec-root.pem");
    const loaded = await loadCa(rootPem, await fixture("ec-root.key"));
    const keys = await generateKeyPair();
    const now = certificateInfo(rootPem).notBefore + DAY;
    const certPem = await issueSvid({ ca: loaded, spiffeId: ORDERS, publicKey: keys.publicKey, ttlMs: DAY, now });
    assert.equal((await validateSvid([certPem], trustBundleFromPem(rootPem), { now })).id, ORDERS);
  });

  test("an RSA CA with a PKCS#1 key signs an EC SVID", async () => {
    const rootPem = await fixture("rsa-root.pem");
    const loaded = await loadCa(rootPem, await fixture("rsa-root.key"));
    const keys = await generateKeyPair();
    const now = certificateInfo(rootPem).notBefore + DAY;
    const certPem = await issueSvid({ ca: loaded, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: DAY, now });
    const info = await validateSvid([certPem], trustBundleFromPem(rootPem), { now });
    assert.equal(info.publicKeyAlgorithm, "ECDSA P-256");
  });

  test("refuses a key of another certificate and a certificate that is not a CA", async () => {
    await assert.rejects(loadCa(await fixture("ec-root.pem"), await fixture("ec-leaf.key")), refusal("ERR_CA", /CA key does not match/));
    await assert.rejects(loadCa(await fixture("ec-leaf.pem"), await fixture("ec-leaf.key")), refusal("ERR_CA", /is not a CA/));
  });

  test("keeps the key usable after a PEM round trip", async () => {
    const key = await importPrivateKeyPem(ca.keyPem);
    assert.equal(key.algorithm.name, "ECDSA");
  });
});

// openssl, a verifier remora does not control, must accept what remora's CA issues.
const openssl = spawnSync("openssl", ["version"], { encoding: "utf8" });
const hasOpenssl = openssl.status === 0;

describe("openssl accepts remora-issued SVIDs", () => {
  test("openssl verify -x509_strict, as TLS client and server", { skip: hasOpenssl ? false : "openssl not on PATH" }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "remora-ca-"));
    try {
      const keys = await generateKeyPair();
      const certPem = await issueSvid({ ca, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: DAY, now: NOW });
      writeFileSync(join(dir, "root.pem"), ca.certPem);
      writeFileSync(join(dir, "leaf.pem"), certPem);
      for (const purpose of ["sslclient", "sslserver"]) {
        const run = spawnSync(
          "openssl",
          ["verify", "-x509_strict", "-purpose", purpose, "-attime", String(NOW / 1000), "-CAfile", join(dir, "root.pem"), join(dir, "leaf.pem")],
          { encoding: "utf8" },
        );
        assert.equal(run.status, 0, `openssl verify (${purpose}) failed: ${run.stdout}${run.stderr}`);
        assert.match(run.stdout, /leaf\.pem: OK/);
      }
      // And it refuses the same leaf against another root, so the check above can fail.
      const stranger = await createRootCa({ trustDomain: "cluster.local", ttlMs: DAY, now: NOW });
      writeFileSync(join(dir, "stranger.pem"), stranger.certPem);
      const refused = spawnSync("openssl", ["verify", "-attime", String(NOW / 1000), "-CAfile", join(dir, "stranger.pem"), join(dir, "leaf.pem")], {
        encoding: "utf8",
      });
      assert.notEqual(refused.status, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
