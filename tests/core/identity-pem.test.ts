import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isRemoraError } from "../../src/core/errors.ts";
import {
  derToPem,
  importPrivateKeyPem,
  keyMatchesCertificate,
  pemBlocks,
  pemToDer,
} from "../../src/core/identity/pem.ts";
import { fixture } from "../fixtures/fixtures.ts";

describe("PEM blocks", () => {
  test("splits a bundle into labelled DER blocks and round-trips them", async () => {
    const chain = await fixture("int-chain.pem");
    const blocks = pemBlocks(chain);
    assert.deepEqual(blocks.map((b) => b.label), ["CERTIFICATE", "CERTIFICATE"]);
    assert.equal(blocks[0]?.der[0], 0x30); // a DER SEQUENCE
    const again = pemBlocks(blocks.map((b) => derToPem(b.der, b.label)).join(""));
    assert.deepEqual(again, blocks);
    const leaf = await fixture("int-leaf.pem");
    assert.deepEqual(pemToDer(leaf, "CERTIFICATE")[0], blocks[0]?.der);
  });

  test("derToPem wraps base64 at 64 columns", () => {
    const pem = derToPem(new Uint8Array(100).fill(0xab), "TEST");
    const lines = pem.trim().split("\n");
    assert.equal(lines[0], "-----BEGIN TEST-----");
    assert.equal(lines[1]?.length, 64);
    assert.equal(lines.at(-1), "-----END TEST-----");
  });

  test("refuses broken PEM with a sentence naming the source", () => {
    const err = (s: string) => (e: unknown) => isRemoraError(e, "ERR_PEM") && e.message.includes(s);
    assert.throws(() => pemBlocks("-----BEGIN CERTIFICATE-----\nAAAA\n", "root.pem"), err("root.pem has a BEGIN line without"));
    assert.throws(() => pemBlocks("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n", "a.pem"), err("not valid base64"));
    assert.throws(() => pemBlocks("-----BEGIN X-----\nAAAA\n-----END Y-----\n"), err("closed by END Y"));
    assert.throws(() => pemToDer("no pem here", "CERTIFICATE", "c.pem"), err("c.pem holds no CERTIFICATE block"));
  });
});

describe("private keys", () => {
  const forms: [string, string, string][] = [
    ["SEC1 EC", "ec-leaf.key", "ECDSA"],
    ["PKCS#8 EC", "ec-leaf.pkcs8.key", "ECDSA"],
    ["PKCS#1 RSA", "rsa-leaf.key", "RSASSA-PKCS1-v1_5"],
    ["PKCS#8 RSA", "rsa-leaf.pkcs8.key", "RSASSA-PKCS1-v1_5"],
  ];
  for (const [form, file, algorithm] of forms) {
    test(`imports a ${form} key made by openssl`, async () => {
      const key = await importPrivateKeyPem(await fixture(file));
      assert.equal(key.type, "private");
      assert.equal(key.algorithm.name, algorithm);
      assert.equal(key.extractable, false);
      assert.deepEqual(key.usages, ["sign"]);
      if (algorithm === "ECDSA") assert.equal((key.algorithm as { namedCurve?: string }).namedCurve, "P-256");
    });
  }

  test("SEC1 and PKCS#8 forms of one key are the same key", async () => {
    const a = await importPrivateKeyPem(await fixture("ec-leaf.key"), { extractable: true });
    const b = await importPrivateKeyPem(await fixture("ec-leaf.pkcs8.key"), { extractable: true });
    const jwk = async (k: typeof a) => (await crypto.subtle.exportKey("jwk", k)).d;
    assert.equal(await jwk(a), await jwk(b));
  });

  test("refuses what it cannot read, naming the file", async () => {
    const cert = await fixture("ec-leaf.pem");
    await assert.rejects(importPrivateKeyPem(cert, { source: "identity.key" }), (e: unknown) =>
      isRemoraError(e, "ERR_PEM") && /^identity\.key holds no private key/.test(e.message));
    await assert.rejects(
      importPrivateKeyPem("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"),
      /ENCRYPTED PRIVATE KEY; remora reads unencrypted keys only/,
    );
    await assert.rejects(
      importPrivateKeyPem("-----BEGIN EC PRIVATE KEY-----\nMAA=\n-----END EC PRIVATE KEY-----\n", { source: "k.pem" }),
      /k\.pem holds an EC PRIVATE KEY block that is not a SEC1 key/,
    );
    const legacyEncrypted =
      "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    await assert.rejects(importPrivateKeyPem(legacyEncrypted), /encrypted RSA PRIVATE KEY block/);
  });
});

describe("keyMatchesCertificate", () => {
  const pairs: [string, string, boolean][] = [
    ["ec-leaf.key", "ec-leaf.pem", true],
    ["ec-leaf.pkcs8.key", "ec-leaf.pem", true],
    ["rsa-leaf.key", "rsa-leaf.pem", true],
    ["rsa-leaf.pkcs8.key", "rsa-leaf.pem", true],
    ["int-leaf.key", "int-chain.pem", true], // leaf first in a chain file
    ["ec-root.key", "ec-root.pem", true],
    ["ec-leaf.key", "int-leaf.pem", false], // same curve, other key
    ["ec-leaf.key", "rsa-leaf.pem", false], // EC key, RSA certificate
    ["rsa-leaf.key", "ec-leaf.pem", false], // RSA key, EC certificate
    ["rsa-leaf.key", "rsa-root.pem", false], // RSA, other key
  ];
  for (const [key, cert, expected] of pairs) {
    test(`${key} ${expected ? "matches" : "does not match"} ${cert}`, async () => {
      assert.equal(await keyMatchesCertificate(await fixture(key), await fixture(cert)), expected);
    });
  }
});
