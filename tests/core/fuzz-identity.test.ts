// Property tests (fast-check) for the PEM, certificate, CSR, private-key and SVID-chain
// parsers: random bytes, and truncated or mutated DER of the real fixtures in
// tests/fixtures/. Whatever comes in, each returns a result or throws a RemoraError with
// a one-line message; none crashes with a library's own error or hangs (each run is
// bounded by fast-check's timeout, each property by runs and time).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RemoraError } from "../../src/core/errors.ts";
import { certificateInfo, parseCertificatesPem } from "../../src/core/identity/certificate-info.ts";
import { parseCsr } from "../../src/core/identity/csr.ts";
import { derToPem, importPrivateKeyPem, keyMatchesCertificate, pemBlocks, pemToDer } from "../../src/core/identity/pem.ts";
import { createPeerVerifier, trustBundleFromPem, validateSvid } from "../../src/core/identity/svid.ts";
import type { TrustBundle } from "../../src/core/identity/trust-bundle.ts";
import { fixture } from "../fixtures/fixtures.ts";

const RUNS = { numRuns: 300, interruptAfterTimeLimit: 10_000, timeout: 2_000 };

async function clean(f: () => unknown): Promise<void> {
  try {
    await f();
  } catch (e) {
    if (!(e instanceof RemoraError)) throw new Error(`crashed with ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
    assert.ok(e.message.length > 0 && e.message.length < 1_000, `message length ${e.message.length}`);
    assert.ok(!e.message.includes("\n"), `one line: ${JSON.stringify(e.message)}`);
  }
}

/** Byte-level mutations: flip, set, delete, insert, truncate. */
const mutatedBytes = (base: Uint8Array) =>
  fc
    .array(fc.tuple(fc.nat(), fc.constantFrom("flip", "set", "delete", "insert", "truncate"), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 16 })), {
      minLength: 1,
      maxLength: 5,
    })
    .map((ops) => {
      let b = base.slice();
      for (const [at, op, value, n] of ops) {
        const i = b.length === 0 ? 0 : at % b.length;
        if (op === "flip") b[i] = (b[i] ?? 0) ^ (1 << (value % 8));
        else if (op === "set") b[i] = value;
        else if (op === "delete") b = new Uint8Array([...b.subarray(0, i), ...b.subarray(i + n + 1)]);
        else if (op === "insert") b = new Uint8Array([...b.subarray(0, i), ...new Array<number>(n + 1).fill(value), ...b.subarray(i)]);
        else b = b.slice(0, i);
      }
      return b;
    });

const randomBytes = fc.uint8Array({ maxLength: 600 });

// Read at top level: a describe() callback that awaits registers no tests under deno.
const names = ["ec-leaf.pem", "ec-root.pem", "int-chain.pem", "rsa-leaf.pem", "bad-two-uris.pem", "ec-leaf.csr", "ec-leaf.key", "ec-leaf.pkcs8.key", "rsa-leaf.key"];
const texts = Object.fromEntries(await Promise.all(names.map(async (n) => [n, await fixture(n)] as const)));

describe("fuzz: PEM, certificates, CSRs, keys and SVID chains", () => {
  const blocksOf = (n: string) => pemBlocks(texts[n] ?? "", n);
  const certDers = ["ec-leaf.pem", "ec-root.pem", "int-chain.pem", "rsa-leaf.pem", "bad-two-uris.pem"].flatMap((n) => blocksOf(n).map((b) => b.der));
  const csrDer = blocksOf("ec-leaf.csr")[0]!.der;
  const keys = ["ec-leaf.key", "ec-leaf.pkcs8.key", "rsa-leaf.key"].map((n) => blocksOf(n)[0]!);
  const bundle: TrustBundle = trustBundleFromPem(texts["ec-root.pem"] ?? "", "cluster.local");
  const now = Date.parse("2030-01-01T00:00:00Z");
  const anyCertDer = fc.constantFrom(...certDers).chain(mutatedBytes);

  test("PEM text: random text and mangled armour", async () => {
    const armour = fc.constantFrom("-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----", "-----BEGIN ", "-----END EC PRIVATE KEY-----", "Proc-Type: 4,ENCRYPTED", "====", "\n", "MIIB");
    const text = fc.array(fc.oneof(armour, fc.string({ maxLength: 20 }), fc.base64String({ maxLength: 40 })), { maxLength: 12 }).map((p) => p.join(""));
    await fc.assert(
      fc.asyncProperty(text, async (t) => {
        await clean(() => pemBlocks(t, "x.pem"));
        await clean(() => pemToDer(t, "CERTIFICATE", "x.pem"));
        await clean(() => parseCertificatesPem(t, "x.pem"));
      }),
      RUNS,
    );
  });

  test("certificates: random bytes and mutated real DER", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(randomBytes, anyCertDer), async (der) => {
        const pem = derToPem(der, "CERTIFICATE");
        await clean(() => certificateInfo(pem));
        await clean(() => trustBundleFromPem(pem, "cluster.local"));
        await clean(() => validateSvid([der], bundle, { now }));
        await clean(() => keyMatchesCertificate(texts["ec-leaf.key"] ?? "", pem));
      }),
      { ...RUNS, numRuns: 600 },
    );
  });

  test("peer chains as a handshake hands them over: mutated leaf and intermediates", async () => {
    const verify = createPeerVerifier(() => bundle, { now: () => now }, "cluster.local");
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(anyCertDer, randomBytes, fc.constantFrom(...certDers)), { maxLength: 4 }), fc.option(fc.constantFrom("spiffe://cluster.local/ns/default/sa/payments", "x")), async (chain, expected) => {
        await clean(() => verify(chain, expected ?? undefined));
      }),
      RUNS,
    );
  });

  test("CSRs: random bytes, truncated and mutated real DER", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(randomBytes, mutatedBytes(csrDer), fc.nat({ max: csrDer.length }).map((n) => csrDer.slice(0, n))), async (der) => {
        await clean(() => parseCsr(derToPem(der, "CERTIFICATE REQUEST")));
      }),
      RUNS,
    );
  });

  test("private keys: mutated SEC1, PKCS#8 and PKCS#1 blocks", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...keys).chain((k) => fc.oneof(mutatedBytes(k.der), randomBytes).map((der) => ({ label: k.label, der }))), async ({ label, der }) => {
        await clean(() => importPrivateKeyPem(derToPem(der, label), { source: "identity.key" }));
      }),
      RUNS,
    );
  });

  test("the untouched fixtures still parse (the mutations start from real input)", async () => {
    assert.match(certificateInfo(texts["ec-leaf.pem"] ?? "").id ?? "", /^spiffe:\/\//);
    assert.ok((await parseCsr(texts["ec-leaf.csr"] ?? "")).requestedIds.length >= 1);
    for (const k of keys) await importPrivateKeyPem(derToPem(k.der, k.label));
  });
});
