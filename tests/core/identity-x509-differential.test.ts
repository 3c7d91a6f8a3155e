// remora's own DER certificate reader (certificate-der.ts, signature.ts) against @peculiar/x509
// as the oracle: every field the SVID rules and admin pages use reads the same for certificates
// made by remora's CA, by the library with awkward names, by openssl, and for the committed
// fixtures; signatures verify alike; mutated DER never escapes as anything but a RemoraError.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { RemoraError } from "../../src/core/errors.ts";
import { createRootCa, exportPrivateKeyPem, generateKeyPair, issueSvid, loadCa, parseCsr } from "../../src/core/identity/ca.ts";
import { parseCertificate } from "../../src/core/identity/certificate-der.ts";
import type { Certificate } from "../../src/core/identity/certificate-der.ts";
import { createCsr } from "../../src/core/identity/csr-create.ts";
import { hex } from "../../src/core/identity/der.ts";
import { pemBlocks, pemToDer } from "../../src/core/identity/pem.ts";
import { verifyCertificateSignature } from "../../src/core/identity/signature.ts";
import type { CryptoKey, CryptoKeyPair } from "../../src/core/identity/web-crypto.ts";
import { x509 } from "../../src/core/identity/x509.ts";

const DAY = 86_400_000;
const NOW = Date.UTC(2030, 0, 15, 12, 0, 0);
const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const fixturesDir = new URL("../fixtures/", import.meta.url);

/** What remora reads, in the library's terms (the functions certificate-info.ts had before). */
function libraryReading(der: Uint8Array) {
  const lib = new x509.X509Certificate(der as Uint8Array<ArrayBuffer>);
  const bc = lib.getExtension(x509.BasicConstraintsExtension);
  const san = lib.getExtension(x509.SubjectAlternativeNameExtension);
  const alg = lib.publicKey.algorithm as { name: string; namedCurve?: string; modulusLength?: number };
  const summary =
    alg.namedCurve ? `${alg.name} ${alg.namedCurve}`
    : alg.name.startsWith("RSA") ? (alg.modulusLength ? `RSA ${alg.modulusLength}` : "RSA")
    : alg.name;
  return {
    serial: lib.serialNumber.toLowerCase(),
    subject: lib.subject,
    issuer: lib.issuer,
    notBefore: lib.notBefore.getTime(),
    notAfter: lib.notAfter.getTime(),
    uriSans: san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [],
    basicConstraints: bc ? { ca: bc.ca, ...(bc.pathLength === undefined ? {} : { pathLength: bc.pathLength }) } : undefined,
    keyUsage: lib.getExtension(x509.KeyUsagesExtension)?.usages,
    extensions: [...lib.extensions].map((e) => ({ oid: e.type, critical: e.critical, value: hex(new Uint8Array(e.value)) })),
    publicKey: summary,
    // `tbs` is the library's private field: the signed bytes as it kept them.
    tbs: hex(new Uint8Array((lib as unknown as { tbs: ArrayBuffer }).tbs)),
    signature: hex(new Uint8Array(lib.signature)),
  };
}

function ownReading(cert: Certificate) {
  return {
    serial: cert.serial,
    subject: cert.subject,
    issuer: cert.issuer,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    uriSans: [...cert.uriSans],
    basicConstraints: cert.basicConstraints,
    keyUsage: cert.keyUsage,
    extensions: cert.extensions.map((e) => ({ oid: e.oid, critical: e.critical, value: hex(e.value) })),
    publicKey: cert.publicKey.summary,
    tbs: hex(cert.tbs),
    signature: hex(cert.signature),
  };
}

function assertSameReading(der: Uint8Array, label: string): Certificate {
  const own = parseCertificate(der, label);
  assert.deepEqual(ownReading(own), libraryReading(der), label);
  return own;
}

async function libraryVerifies(cert: Uint8Array, issuer: Uint8Array): Promise<boolean> {
  try {
    const lib = new x509.X509Certificate(cert as Uint8Array<ArrayBuffer>);
    return await lib.verify({ publicKey: new x509.X509Certificate(issuer as Uint8Array<ArrayBuffer>), signatureOnly: true });
  } catch {
    return false;
  }
}

function flipBit(der: Uint8Array, at: number): Uint8Array {
  const out = der.slice();
  out[at] = out[at]! ^ 0x01;
  return out;
}

/** Signed by `issuer`: both readers agree that it verifies, and that a flipped bit in tbs or signature does not. */
async function assertSignaturesAgree(certDer: Uint8Array, issuerDer: Uint8Array, label: string): Promise<void> {
  const cert = parseCertificate(certDer, label);
  const issuer = parseCertificate(issuerDer, `${label} issuer`);
  assert.equal(await libraryVerifies(certDer, issuerDer), true, `${label}: the oracle verifies`);
  assert.equal(await verifyCertificateSignature(cert, issuer), true, `${label}: remora verifies`);
  // tbs's last byte (a public key or extension byte) is signed; the certificate's last byte is the signature's.
  const tbsAt = cert.tbs.byteOffset - cert.der.byteOffset + cert.tbs.length - 1;
  for (const [where, at] of [["tbs", tbsAt], ["signature", certDer.length - 1]] as const) {
    const bad = flipBit(certDer, at);
    assert.equal(await libraryVerifies(bad, issuerDer), false, `${label}: the oracle refuses a flipped ${where} bit`);
    // Refusing to parse the flipped bytes at all is a refusal too (the byte may be a length).
    const ownVerdict = await Promise.resolve()
      .then(() => verifyCertificateSignature(parseCertificate(bad, label), issuer))
      .catch((e: unknown) => (e instanceof RemoraError ? false : Promise.reject(e)));
    assert.equal(ownVerdict, false, `${label}: remora refuses a flipped ${where} bit`);
  }
}

const derOf = (pem: string): Uint8Array => pemToDer(pem, "CERTIFICATE")[0] ?? assert.fail("no certificate");

async function keyPair(algorithm: "P-256" | "P-384" | "RSA"): Promise<CryptoKeyPair> {
  const params =
    algorithm === "RSA" ?
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }
    : { name: "ECDSA", namedCurve: algorithm };
  return (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
}

/** A CA certificate the library generates (remora's CA makes P-256 roots only), loaded with loadCa. */
async function libraryCa(o: { algorithm: "P-256" | "P-384" | "RSA"; name: string; issuer?: { certPem: string; keys: { privateKey: CryptoKey } }; pathLength?: number }) {
  const keys = await keyPair(o.algorithm);
  const signingAlgorithm = o.algorithm === "RSA" ? { name: "RSASSA-PKCS1-v1_5" } : { name: "ECDSA", hash: o.algorithm === "P-384" ? "SHA-384" : "SHA-256" };
  const extensions = [
    new x509.BasicConstraintsExtension(true, o.pathLength, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    new x509.SubjectAlternativeNameExtension([{ type: "url", value: "spiffe://cluster.local" }]),
  ];
  const common = { serialNumber: "00ff10", notBefore: new Date(NOW - DAY), notAfter: new Date(NOW + 30 * DAY), extensions };
  const cert = o.issuer
    ? await x509.X509CertificateGenerator.create({
        ...common,
        subject: o.name,
        issuer: new x509.X509Certificate(o.issuer.certPem).subjectName,
        publicKey: keys.publicKey,
        signingKey: o.issuer.keys.privateKey,
        signingAlgorithm: (o.issuer.keys.privateKey.algorithm as { name: string }).name === "ECDSA" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" },
      })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...common, name: o.name, keys, signingAlgorithm });
  const certPem = cert.toString("pem") + "\n";
  return { ca: await loadCa(certPem, await exportPrivateKeyPem(keys.privateKey)), certPem, keys };
}

// Made at top level: a describe() callback that awaits registers no tests under deno.
const root = await createRootCa({ trustDomain: "cluster.local", ttlMs: 365 * DAY, now: NOW });
const rootDer = derOf(root.certPem);

describe("certificates made by remora's CA read as the library reads them", () => {

  test("a P-256 root, and leaves with P-256, P-384 and RSA-2048 keys", async () => {
    assertSameReading(rootDer, "root");
    await assertSignaturesAgree(rootDer, rootDer, "self-signed root");
    for (const algorithm of ["P-256", "P-384", "RSA"] as const) {
      const keys = await keyPair(algorithm);
      const leaf = derOf(await issueSvid({ ca: root, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: DAY, now: NOW, dnsNames: ["localhost"], ipAddresses: ["192.0.2.1"] }));
      const own = assertSameReading(leaf, `${algorithm} leaf`);
      assert.deepEqual(own.uriSans, [PAYMENTS]);
      assert.equal(own.publicKey.summary, algorithm === "RSA" ? "RSA 2048" : `ECDSA ${algorithm}`);
      await assertSignaturesAgree(leaf, rootDer, `${algorithm} leaf`);
    }
  });

  test("P-384 and RSA CAs (sha384 ECDSA, sha256 RSA signatures), and an intermediate with pathLen", async () => {
    for (const algorithm of ["P-384", "RSA"] as const) {
      const { ca, certPem } = await libraryCa({ algorithm, name: `O=remora, CN=${algorithm} root` });
      assertSameReading(derOf(certPem), `${algorithm} root`);
      const keys = await generateKeyPair();
      const leaf = derOf(await issueSvid({ ca, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: DAY, now: NOW }));
      assertSameReading(leaf, `leaf of the ${algorithm} root`);
      await assertSignaturesAgree(leaf, derOf(certPem), `leaf of the ${algorithm} root`);
    }
    const intermediate = await libraryCa({ algorithm: "P-256", name: "O=remora, CN=intermediate", issuer: { certPem: root.certPem, keys: root.keys }, pathLength: 0 });
    const intDer = derOf(intermediate.certPem);
    assert.deepEqual(assertSameReading(intDer, "intermediate").basicConstraints, { ca: true, pathLength: 0 });
    await assertSignaturesAgree(intDer, rootDer, "intermediate");
    const keys = await generateKeyPair();
    const leaf = derOf(await issueSvid({ ca: intermediate.ca, spiffeId: PAYMENTS, publicKey: keys.publicKey, ttlMs: DAY, now: NOW }));
    assertSameReading(leaf, "leaf of the intermediate");
    await assertSignaturesAgree(leaf, intDer, "leaf of the intermediate");
    // Wrong issuer: neither verifies.
    assert.equal(await verifyCertificateSignature(parseCertificate(leaf, "leaf"), parseCertificate(rootDer, "root")), false);
    assert.equal(await libraryVerifies(leaf, rootDer), false);
  });
});

describe("names and extensions the library writes read the same", () => {
  const names: (string | x509.JsonNameParams)[] = [
    "CN=plain",
    "O=remora, CN=cluster.local root CA",
    "C=DE, ST=Bayern, L=München, O=Müller \\, Söhne, OU=a+OU=b, CN=x",
    'CN=quote\\"s \\<angle\\> semi\\;colon back\\\\slash',
    "CN=\\ leading space, O=trailing space\\ , OU=\\#hash",
    "E=ops@example.com, DC=example, DC=com, CN=mail",
    "G=Ada, SN=Lovelace, I=A, T=Dr, CN=titles",
    "1.2.3.4=#04030102ff, CN=hex value",
    "2.5.4.5=12345, CN=serial attribute",
    [{ CN: [{ utf8String: "日本語 utf8" }] }, { O: [{ bmpString: "bmp Ω" }] }, { OU: [{ ia5String: "ia5" }] }, { L: [{ printableString: "printable" }] }],
    [{ CN: [{ universalString: "universal" }] }],
    [{ CN: ["line\nbreak\tand\ttabs"] }],
  ];

  for (const name of names) {
    test(`subject ${JSON.stringify(name)}`, async () => {
      const keys = await keyPair("P-256");
      const cert = await x509.X509CertificateGenerator.createSelfSigned({
        serialNumber: "0080",
        name: typeof name === "string" ? name : new x509.Name(name),
        notBefore: new Date(Date.UTC(1999, 11, 31, 23, 59, 59)),
        // After 2049: a GeneralizedTime (RFC 5280 §4.1.2.5).
        notAfter: new Date(Date.UTC(2051, 5, 1)),
        keys,
        signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
        extensions: [
          new x509.BasicConstraintsExtension(false),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.decipherOnly | x509.KeyUsageFlags.keyAgreement, false),
          new x509.SubjectAlternativeNameExtension([
            { type: "dns", value: "a.example" },
            { type: "url", value: "spiffe://a/b" },
            { type: "email", value: "x@example.com" },
            { type: "ip", value: "2001:db8::1" },
            { type: "url", value: "https://example.com/ü" },
          ]),
          new x509.Extension("1.3.6.1.4.1.99999.1", true, new Uint8Array([5, 0])),
        ],
      });
      const der = new Uint8Array(cert.rawData);
      const own = assertSameReading(der, "generated");
      assert.equal(own.subject, cert.subject);
      await assertSignaturesAgree(der, der, "generated");
    });
  }
});

describe("Ed25519 (RFC 8410)", () => {
  test("a self-signed Ed25519 certificate reads and verifies alike", async () => {
    const keys = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as unknown as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "7f01", name: "CN=edwards", notBefore: new Date(NOW), notAfter: new Date(NOW + DAY), keys, signingAlgorithm: { name: "Ed25519" },
    });
    const der = new Uint8Array(cert.rawData);
    assert.equal(assertSameReading(der, "Ed25519").publicKey.summary, "Ed25519");
    await assertSignaturesAgree(der, der, "Ed25519");
  });
});

const hasOpenssl = spawnSync("openssl", ["version"], { encoding: "utf8" }).status === 0;

describe("certificates from openssl read the same", () => {
  test("the committed fixtures", () => {
    let count = 0;
    for (const file of readdirSync(fixturesDir).filter((f) => f.endsWith(".pem"))) {
      for (const block of pemBlocks(readFileSync(new URL(file, fixturesDir), "utf8"), file)) {
        assertSameReading(block.der, file);
        count++;
      }
    }
    assert.ok(count >= 15, `${count} fixture certificates`);
  });

  test("the fixtures' chains verify alike", async () => {
    const fx = (n: string) => derOf(readFileSync(new URL(`${n}.pem`, fixturesDir), "utf8"));
    for (const [leaf, issuer] of [["ec-leaf", "ec-root"], ["rsa-leaf", "rsa-root"], ["int-leaf", "int-ca"], ["int-ca", "ec-root"], ["ec-root", "ec-root"]] as const) {
      await assertSignaturesAgree(fx(leaf), fx(issuer), `${leaf} by ${issuer}`);
    }
  });

  test("UTF-8, multi-valued and escaped subjects, P-384 and RSA-2048 keys, sha384/sha512", { skip: hasOpenssl ? false : "openssl not on PATH" }, () => {
    const dir = mkdtempSync(join(tmpdir(), "remora-x509-"));
    try {
      const cases: [string, string[], string[]][] = [
        ["/C=FR/O=Société Générale/CN=ünïcödé", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-sha384"], ["-utf8"]],
        // RSA-2048: a 4096-bit key took openssl over bun test's 5 s default on a loaded machine.
        ["/O=a+OU=b/CN=c\\,d/emailAddress=e@example.com/DC=org", ["-newkey", "rsa:2048", "-sha512"], []],
        ["/CN= spaced #name ", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-sha256"], ["-multivalue-rdn"]],
      ];
      for (const [i, [subject, keyArgs, extra]] of cases.entries()) {
        const out = join(dir, `c${i}.pem`);
        const run = spawnSync("openssl", ["req", "-x509", "-nodes", "-keyout", join(dir, `k${i}.pem`), "-out", out, "-days", "30", "-subj", subject, ...keyArgs, ...extra,
          "-addext", "subjectAltName=URI:spiffe://cluster.local/ns/x/sa/y,DNS:a.example", "-addext", "keyUsage=critical,digitalSignature,keyEncipherment"], { encoding: "utf8" });
        assert.equal(run.status, 0, run.stderr);
        const der = derOf(readFileSync(out, "utf8"));
        assertSameReading(der, subject);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("malformed input", () => {
  const fixtureDers = readdirSync(fixturesDir)
    .filter((f) => f.endsWith(".pem"))
    .flatMap((f) => pemBlocks(readFileSync(new URL(f, fixturesDir), "utf8"), f).map((b) => b.der));

  test("a URI SAN with a control character is refused, so no one-line error or log line can be split by it", () => {
    const spiffe = new TextEncoder().encode("spiffe://");
    const der = fixtureDers.find((d) => indexOf(d, spiffe) >= 0)!;
    assert.ok(der, "a fixture with a spiffe:// URI SAN");
    assert.ok(parseCertificate(der, "fixture").uriSans.length > 0);
    const bad = der.slice();
    bad[indexOf(der, spiffe)] = 0x0a; // "\npiffe://...", what the fuzzer found
    assert.throws(() => parseCertificate(bad, "mutated"), (e: unknown) => e instanceof RemoraError && e.code === "ERR_SVID_INVALID" && !e.message.includes("\n"));
  });

  test("mutated DER: a certificate or a RemoraError, and where both readers accept it, the same reading", () => {
    const mutations = fc.tuple(
      fc.constantFrom(...fixtureDers),
      fc.array(fc.tuple(fc.nat(), fc.constantFrom("flip", "set", "delete", "insert", "truncate"), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(mutations, ([base, ops]) => {
        let b = base.slice();
        for (const [at, op, value] of ops) {
          const i = at % Math.max(b.length, 1);
          if (op === "flip") b[i] = (b[i] ?? 0) ^ (1 << (value % 8));
          else if (op === "set") b[i] = value;
          else if (op === "delete") b = new Uint8Array([...b.subarray(0, i), ...b.subarray(i + 1)]);
          else if (op === "insert") b = new Uint8Array([...b.subarray(0, i), value, ...b.subarray(i)]);
          else b = b.slice(0, i);
        }
        let own: Certificate;
        try {
          own = parseCertificate(b, "mutated");
        } catch (e) {
          assert.ok(e instanceof RemoraError, `not a RemoraError: ${String(e)}`);
          assert.equal(e.code, "ERR_SVID_INVALID");
          return;
        }
        let theirs: ReturnType<typeof libraryReading>;
        try {
          theirs = libraryReading(b);
        } catch {
          return; // The library refuses what remora reads: remora stays the stricter one elsewhere.
        }
        accepted++;
        const mine = ownReading(own);
        // A key algorithm remora does not use is summarised as its bare OID, where the library
        // may still name it (a mutation turned id-ecPublicKey into ecdsa-with-SHA1, which it
        // calls "ECDSA"): no SVID can carry such a key, so that name is not compared.
        const unknownKey = /^\d+(\.\d+)+$/.test(mine.publicKey);
        // Fields both decode; the library may keep bytes remora reads differently only in
        // encodings DER forbids, which remora refuses before getting here.
        assert.deepEqual(
          { ...mine, extensions: undefined, tbs: undefined, ...(unknownKey ? { publicKey: undefined } : {}) },
          { ...theirs, extensions: undefined, tbs: undefined, ...(unknownKey ? { publicKey: undefined } : {}) },
        );
      }),
      { numRuns: 1500 },
    );
    assert.ok(accepted > 0, "some mutations still parse, so the comparison ran");
  });

  test("random bytes and truncations never escape as another error", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 400 }), fc.constantFrom(...fixtureDers).chain((d) => fc.nat({ max: d.length }).map((n) => d.slice(0, n)))), (b) => {
        try {
          parseCertificate(b, "input");
        } catch (e) {
          assert.ok(e instanceof RemoraError && e.code === "ERR_SVID_INVALID", String(e));
        }
      }),
      { numRuns: 1000 },
    );
  });

  test("trailing bytes and a duplicated extension are refused", async () => {
    const der = fixtureDers[0]!;
    parseCertificate(der, "as committed");
    assert.throws(() => parseCertificate(new Uint8Array([...der, 0]), "padded"), RemoraError);
    // RFC 5280 §4.2: one instance per extension; the library would read only the first SAN.
    const keys = await keyPair("P-256");
    const san = (uri: string) => new x509.SubjectAlternativeNameExtension([{ type: "url", value: uri }]);
    const twice = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: "01", name: "CN=twice", notBefore: new Date(NOW), notAfter: new Date(NOW + DAY), keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" }, extensions: [san("spiffe://a/x"), san("spiffe://a/y")],
    });
    assert.throws(() => parseCertificate(new Uint8Array(twice.rawData), "twice"), (e) => e instanceof RemoraError && e.code === "ERR_SVID_INVALID");
  });
});

describe("createCsr (library-free) is read back by parseCsr (the library)", () => {
  for (const algorithm of ["P-256", "P-384", "RSA"] as const) {
    test(`a ${algorithm} key`, async () => {
      const keys = await keyPair(algorithm);
      const pem = await createCsr({ keys, spiffeId: PAYMENTS });
      assert.match(pem, /^-----BEGIN CERTIFICATE REQUEST-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE REQUEST-----\n$/);
      const parsed = await parseCsr(pem);
      assert.deepEqual(parsed.requestedIds, [PAYMENTS]);
      const lib = new x509.Pkcs10CertificateRequest(pem);
      assert.equal(lib.subject, "O=remora");
      assert.equal(await lib.verify(), true);
      // The CSR carries the requester's key: the exported SPKI is the one in the request.
      const spki = new Uint8Array(await crypto.subtle.exportKey("spki", parsed.publicKey));
      assert.equal(hex(spki), hex(new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey))));
      // A flipped bit in the request's signature is refused.
      const der = pemToDer(pem, "CERTIFICATE REQUEST")[0]!;
      const bad = flipBit(der, der.length - 1);
      const badPem = `-----BEGIN CERTIFICATE REQUEST-----\n${btoa(String.fromCharCode(...bad))}\n-----END CERTIFICATE REQUEST-----\n`;
      await assert.rejects(parseCsr(badPem), (e) => e instanceof RemoraError && e.code === "ERR_CSR_INVALID");
    });
  }
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
