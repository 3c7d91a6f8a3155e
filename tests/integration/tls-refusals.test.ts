// The TLS refusal matrix, with `openssl s_client` as the external client against a
// sidecar's STRICT inbound: every bad certificate, old protocol, weak cipher and plaintext
// is refused, counted (remora_tls_handshakes_total{result="refused"} and
// remora_inbound_denied_total{reason}) and logged once per peer address. The caller side
// (the sidecar's upstream) refuses a server presenting the wrong SPIFFE ID.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x509 } from "../../src/core/identity/x509.ts";
import { createRootCa, exportPrivateKeyPem, generateKeyPair, type RootCa } from "../../src/core/identity/ca.ts";
import { detectRuntime, loadRuntime } from "../../src/runtime/detect.ts";
import { startSidecar, type Sidecar } from "../../src/sidecar/sidecar.ts";
import { systemClock } from "../../src/core/system-clock.ts";
import { parsePolicy } from "../../src/core/policy/parse.ts";
import { startApp, type TestApp } from "./support/processes.ts";
import { freePort } from "./support/control-process.ts";
import { rawRequest } from "./helpers/loopback.ts";

const TD = "cluster.local";
const id = (sa: string, td = TD) => `spiffe://${td}/ns/default/sa/${sa}`;
const HOUR = 3600_000;
const EC = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

interface LeafOptions {
  ca?: RootCa;
  uri?: string;
  notBefore?: number;
  notAfter?: number;
  isCa?: boolean;
  eku?: string[];
}
interface Pair { cert: string; key: string }

async function leaf(o: LeafOptions): Promise<{ certPem: string; keyPem: string }> {
  const keys = await generateKeyPair();
  const now = Date.now();
  const base = {
    serialNumber: `01${Math.floor(Math.random() * 1e12).toString(16)}`,
    notBefore: new Date(o.notBefore ?? now - HOUR),
    notAfter: new Date(o.notAfter ?? now + HOUR),
    signingAlgorithm: EC,
    extensions: [
      new x509.BasicConstraintsExtension(o.isCa ?? false, undefined, true),
      new x509.KeyUsagesExtension(o.isCa ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(o.eku ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: "url", value: o.uri ?? id("orders") }]),
    ],
  };
  const cert = o.ca
    ? await x509.X509CertificateGenerator.create({ ...base, subject: "O=remora-test", issuer: new x509.X509Certificate(o.ca.certPem).subjectName, publicKey: keys.publicKey, signingKey: o.ca.keys.privateKey })
    : await x509.X509CertificateGenerator.createSelfSigned({ ...base, name: "O=remora-test", keys });
  return { certPem: cert.toString("pem") + "\n", keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

let dir: string;
let root: RootCa;
let app: TestApp;
let sidecar: Sidecar;
const logs: { obj: Record<string, unknown>; msg?: string }[] = [];
const files: Record<string, Pair> = {};

async function save(name: string, p: { certPem: string; keyPem: string }): Promise<void> {
  writeFileSync(join(dir, `${name}.pem`), p.certPem);
  writeFileSync(join(dir, `${name}.key`), p.keyPem);
  files[name] = { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "remora-tls-"));
  const now = Date.now();
  root = await createRootCa({ trustDomain: TD, ttlMs: 24 * HOUR, now });
  const oldRoot = await createRootCa({ trustDomain: TD, ttlMs: 24 * HOUR, now, name: "O=remora, CN=cluster.local old root" });
  const otherRoot = await createRootCa({ trustDomain: "other.domain", ttlMs: 24 * HOUR, now });
  writeFileSync(join(dir, "root.pem"), root.certPem);
  await save("good", await leaf({ ca: root }));
  await save("expired", await leaf({ ca: root, notBefore: now - 3 * HOUR, notAfter: now - HOUR }));
  await save("not-yet-valid", await leaf({ ca: root, notBefore: now + HOUR, notAfter: now + 3 * HOUR }));
  await save("other-domain-ca", await leaf({ ca: otherRoot, uri: id("orders", "other.domain") }));
  await save("other-domain-id", await leaf({ ca: root, uri: id("orders", "other.domain") }));
  await save("self-signed", await leaf({}));
  await save("ca-cert", await leaf({ ca: root, isCa: true }));
  await save("server-only", await leaf({ ca: root, eku: [x509.ExtendedKeyUsage.serverAuth] }));
  await save("old-root", await leaf({ ca: oldRoot }));
  await save("evil-server", await leaf({ ca: root, uri: id("evil") }));

  app = await startApp("app");
  const payments = await leaf({ ca: root, uri: id("payments") });
  const evilPort = await freePort();
  evilAddress = `127.0.0.1:${evilPort}`;
  sidecar = await startSidecar(
    {
      identity: { ...payments, bundlePem: root.certPem },
      inbound: { listen: "127.0.0.1:0", app: app.address, mode: "STRICT" },
      outbound: { listen: "127.0.0.1:0" },
      admin: { listen: "127.0.0.1:0" },
      mesh: {
        policies: [parsePolicy({ route: { destination: "billing", retry_policy: { num_retries: 0 }, tls: { mode: "ISTIO_MUTUAL" } } }, "test")],
        endpoints: { billing: [{ address: evilAddress, identity: id("billing") }] },
        version: "1",
      },
      drainMs: 0,
    },
    {
      runtime: await loadRuntime(),
      clock: systemClock,
      random: Math.random,
      log: { info() {}, error() {}, warn: (obj: object, msg?: string) => void logs.push({ obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) }) },
    },
  );
});
let evilAddress = "";

after(async () => {
  await sidecar?.close();
  await app?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs openssl with `input` on stdin; resolves with everything it printed (exit status ignored). */
function openssl(args: string[], input: string, limitMs = 15_000): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn("openssl", args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (out += c));
    const t = setTimeout(() => child.kill("SIGKILL"), limitMs);
    child.on("error", fail);
    child.on("close", () => (clearTimeout(t), ok(out)));
    // Keep stdin open briefly: with TLS 1.3 the server's verdict on the client certificate
    // arrives after the client thinks the handshake is done.
    child.stdin.write(input);
    setTimeout(() => child.stdin.end(), 1500);
  });
}

function sClient(extra: string[]): Promise<string> {
  return openssl(["s_client", "-connect", sidecar.inbound!.address, "-CAfile", join(dir, "root.pem"), "-ign_eof", ...extra], "GET / HTTP/1.1\r\nhost: payments\r\nconnection: close\r\n\r\n");
}

const withCert = (name: string) => ["-cert", files[name]!.cert, "-key", files[name]!.key];

function count(metric: string, labels: string): number {
  const line = sidecar.metrics.expose().split("\n").find((l) => l.startsWith(`${metric}{${labels}} `));
  return line ? Number(line.split(" ").pop()) : 0;
}

const refusedLogs = () => logs.filter((l) => l.msg === "inbound mTLS refused");

/** Runs one case and checks it was refused with `reason` (one of several where OpenSSL's path varies), counted and logged. */
async function expectRefused(run: () => Promise<string>, reasons: string[]): Promise<string> {
  const handshakes = count("remora_tls_handshakes_total", 'direction="inbound",result="refused"');
  const denied = Object.fromEntries(reasons.map((r) => [r, count("remora_inbound_denied_total", `reason="${r}"`)]));
  const hits = app.hits;
  const out = await run();
  assert.doesNotMatch(out, /HTTP\/1\.1 200/, "the request reached the app");
  assert.equal(app.hits, hits);
  // The refusal is recorded asynchronously on the server side; give it a moment.
  for (let i = 0; i < 50 && count("remora_tls_handshakes_total", 'direction="inbound",result="refused"') === handshakes; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(count("remora_tls_handshakes_total", 'direction="inbound",result="refused"'), handshakes + 1, out);
  const moved = reasons.filter((r) => count("remora_inbound_denied_total", `reason="${r}"`) === denied[r]! + 1);
  assert.equal(moved.length, 1, `remora_inbound_denied_total did not move for ${reasons.join("|")}: ${sidecar.metrics.expose().split("\n").filter((l) => l.includes("denied")).join("; ")}`);
  return moved[0]!;
}

describe("inbound STRICT refusals (openssl s_client)", () => {
  test("a valid SVID gets through (the matrix below can fail)", async () => {
    const out = await sClient(withCert("good"));
    assert.match(out, /HTTP\/1\.1 200/);
  });

  // Deno's node:tls verifies with rustls and reports every chain failure as
  // UNABLE_TO_VERIFY_LEAF_SIGNATURE, so there those are counted as "untrusted" (docs/runtimes.md).
  const chain = (reason: string) => (detectRuntime() === "deno" ? [reason, "untrusted"] : [reason]);
  const cases: [string, () => Promise<string>, string[]][] = [
    ["expired", () => sClient(withCert("expired")), chain("expired")],
    ["not yet valid", () => sClient(withCert("not-yet-valid")), chain("not-yet-valid")],
    ["another trust domain's CA", () => sClient(withCert("other-domain-ca")), ["untrusted"]],
    ["another trust domain's ID under our root", () => sClient(withCert("other-domain-id")), ["identity"]],
    ["self-signed", () => sClient(withCert("self-signed")), ["untrusted"]],
    // X509-SVID §4.1/§4.3: a leaf SVID must not be a CA and must allow digitalSignature only.
    ["a CA certificate as the client's", () => sClient(withCert("ca-cert")), ["identity", "key-usage", "untrusted"]],
    // An EKU without clientAuth: OpenSSL's ssl_client purpose check refuses it.
    ["no clientAuth extended key usage", () => sClient(withCert("server-only")), chain("key-usage")],
    ["a root removed by rotation", () => sClient(withCert("old-root")), ["untrusted"]],
    ["no client certificate", () => sClient([]), ["no-certificate"]],
    ["TLS 1.0", () => sClient(["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0", ...withCert("good")]), ["protocol"]],
    ["TLS 1.1", () => sClient(["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", ...withCert("good")]), ["protocol"]],
    ["a weak cipher (no encryption)", () => sClient(["-tls1_2", "-cipher", "ECDHE-ECDSA-NULL-SHA:@SECLEVEL=0", ...withCert("good")]), ["protocol"]],
    ["plaintext HTTP to the mTLS port", () => plaintext(), ["plaintext"]],
  ];
  for (const [name, run, reasons] of cases) {
    test(`refused: ${name}`, async () => {
      await expectRefused(run, reasons);
    });
  }

  test("each refusal is logged once per peer address, with the address", async () => {
    const kind = chain("expired").at(-1)!;
    const before = refusedLogs().filter((l) => l.obj.kind === kind).length;
    await expectRefused(() => sClient(withCert("expired")), [kind]);
    await expectRefused(() => sClient(withCert("expired")), [kind]);
    const lines = refusedLogs().filter((l) => l.obj.kind === kind);
    assert.equal(before, 1);
    assert.equal(lines.length, 1, "repeats from the same address are not logged again");
    assert.match(String(lines[0]!.obj.remote), /^127\.0\.0\.1:\d+$/);
    assert.match(String(lines[0]!.obj.reason), /127\.0\.0\.1:\d+/);
    // Every kind in the matrix logged its own line.
    const kinds = new Set(refusedLogs().map((l) => l.obj.kind));
    const all = detectRuntime() === "deno" ? ["untrusted", "identity", "no-certificate", "protocol", "plaintext"] : ["expired", "not-yet-valid", "untrusted", "identity", "key-usage", "no-certificate", "protocol", "plaintext"];
    for (const k of all) assert.ok(kinds.has(k), `no log line for ${k}`);
  });
});

function plaintext(): Promise<string> {
  return new Promise((ok) => {
    const [host, port] = [sidecar.inbound!.address.split(":")[0]!, Number(sidecar.inbound!.address.split(":")[1])];
    const s = net.connect(port, host, () => s.write("GET / HTTP/1.1\r\nhost: payments\r\n\r\n"));
    let out = "";
    s.on("data", (c) => (out += c));
    s.on("error", () => {});
    s.on("close", () => ok(out));
    setTimeout(() => s.destroy(), 5000);
  });
}

describe("the caller refuses a server with the wrong SPIFFE ID", () => {
  test("an upstream presenting spiffe://…/sa/evil where sa/billing is expected: 503, a failed handshake, no request sent", async () => {
    const [, port] = evilAddress.split(":");
    const server = spawn("openssl", ["s_server", "-accept", port!, "-cert", files["evil-server"]!.cert, "-key", files["evil-server"]!.key,
      "-CAfile", join(dir, "root.pem"), "-Verify", "1", "-www", "-quiet"], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      for (let i = 0; i < 100; i++) {
        const up = await new Promise<boolean>((ok) => net.connect(Number(port), "127.0.0.1").once("connect", function (this: net.Socket) { this.destroy(); ok(true); }).once("error", () => ok(false)));
        if (up) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const before = count("remora_tls_handshakes_total", 'direction="outbound",result="failure"');
      const res = await rawRequest({ port: sidecar.outbound.port, path: "http://billing/", headers: { host: "billing" } });
      const body = res.body;
      assert.equal(res.status, 503, body);
      assert.match(body, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/evil|identity/i);
      assert.equal(count("remora_tls_handshakes_total", 'direction="outbound",result="failure"'), before + 1);
    } finally {
      server.kill("SIGKILL");
    }
  });
});
