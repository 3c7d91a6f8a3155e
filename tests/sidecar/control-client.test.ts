import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createControlClient, type ControlTarget } from "../../src/sidecar/control-client.ts";
import type { MeshSettings } from "../../src/sidecar/sidecar.ts";
import type { Authorization } from "../../src/core/authz.ts";
import type { TlsMaterial } from "../../src/runtime/types.ts";
import { certificateInfo } from "../../src/core/identity/certificate-info.ts";
import { isRemoraError } from "../../src/core/errors.ts";
import { FakeControl, recordingLogger, START } from "./fake-control.ts";

const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";

class FakeTarget implements ControlTarget {
  meshes: MeshSettings[] = [];
  auth: (readonly Authorization[])[] = [];
  identities: TlsMaterial[] = [];
  applyMesh(m: MeshSettings) {
    this.meshes.push(m);
  }
  applyAuthorization(a: readonly Authorization[]) {
    this.auth.push(a);
  }
  setIdentity(m: TlsMaterial) {
    this.identities.push(m);
  }
}

async function setup(o: { token?: string } = {}) {
  const cp = await new FakeControl().init();
  const log = recordingLogger();
  const client = createControlClient({
    transport: cp.transport,
    clock: cp.clock,
    random: () => 0.5,
    log,
    crypto: cp.crypto,
    token: o.token ?? "good-token",
    trustDomain: "cluster.local",
    namespace: "default",
    service: "payments",
    proxyId: "payments-1",
    registration: () => ({ address: "192.0.2.1:15006", admin: "192.0.2.1:15000", runtime: "node 24" }),
  });
  return { cp, log, client, target: new FakeTarget() };
}

const goodSnapshot = (version: string, retries = 2) => ({
  version,
  policies: [{ route: { destination: "payments", retry_policy: { num_retries: retries } } }],
  authorization: [{ authorization: { destination: "payments", allow: [{ from: [ORDERS], methods: ["POST"], paths: ["/charge"] }] } }],
  endpoints: { payments: [{ address: "192.0.2.1:15006", identity: PAYMENTS }], orders: [{ address: "", identity: ORDERS }] },
});

describe("enrollment", () => {
  test("sends a CSR with the join token over server-only TLS, never the private key, and holds the issued SVID", async () => {
    const { cp, client } = await setup();
    const material = await client.enroll();
    const [call, ...more] = cp.of("POST", "/v1/identity");
    assert.equal(more.length, 0);
    assert.equal(call!.options.mtls, false);
    assert.equal(call!.options.token, "good-token");
    assert.deepEqual(Object.keys(call!.body as object), ["csr"]);
    assert.match((call!.body as { csr: string }).csr, /^-----BEGIN CERTIFICATE REQUEST-----/);
    assert.ok(material.keyPem.includes("PRIVATE KEY"));
    for (const c of cp.calls) assert.ok(!JSON.stringify(c.body ?? "").includes("PRIVATE KEY"), `${c.method} ${c.path} carried a private key`);
    assert.equal(certificateInfo(material.certPem).id, PAYMENTS);
    assert.equal(material.bundlePem, cp.ca.certPem);
    assert.equal(client.material(), material);
  });

  test("a refused token is one sentence with the control plane's reason", async () => {
    const { client } = await setup({ token: "stale" });
    await assert.rejects(client.enroll(), (e: unknown) => {
      assert.ok(isRemoraError(e, "ERR_CONTROL_REFUSED"));
      assert.equal(e.message, "the control plane refused the join token: the join token has expired");
      return true;
    });
  });

  test("a certificate for another identity is refused", async () => {
    const { cp, client } = await setup();
    cp.issuedFor = ORDERS;
    await assert.rejects(client.enroll(), /issued a certificate for spiffe:\/\/cluster.local\/ns\/default\/sa\/orders, not spiffe:\/\/cluster.local\/ns\/default\/sa\/payments/);
  });

  test("an unreachable control plane is retried with back-off, logged once", async () => {
    const { cp, client, log } = await setup();
    cp.down = true;
    const enrolled = client.enroll();
    await cp.drive(() => cp.of("POST", "/v1/identity").length >= 6);
    cp.down = false;
    let done = false;
    void enrolled.then(() => (done = true));
    await cp.drive(() => done);
    assert.equal(log.lines.filter((l) => l.msg.startsWith("control plane unreachable: connect ECONNREFUSED")).length, 1);
    assert.equal(log.lines.filter((l) => l.msg === "control plane reachable again").length, 1);
  });
});

describe("renewal", () => {
  test("renews at about half-life with the current SVID (mTLS) and swaps the sidecar's identity", async () => {
    const { cp, client, target } = await setup();
    const first = await client.enroll();
    const info = certificateInfo(first.certPem);
    client.start(target);
    await cp.drive(() => target.identities.length === 1);
    const renewal = cp.of("POST", "/v1/identity")[1]!;
    assert.equal(renewal.options.mtls, true);
    assert.equal(renewal.options.token, undefined);
    const fraction = (renewal.at - info.notBefore) / (info.notAfter - info.notBefore);
    assert.ok(fraction >= 0.45 && fraction <= 0.55, `renewed at ${fraction} of the lifetime`);
    const next = target.identities[0]!;
    assert.notEqual(certificateInfo(next.certPem).serial, info.serial);
    assert.notEqual(next.keyPem, first.keyPem, "a new key per certificate");
    assert.equal(client.material(), next);
    // And again at the new certificate's half-life.
    await cp.drive(() => target.identities.length === 2);
    const second = cp.of("POST", "/v1/identity")[2]!;
    assert.ok(second.at - renewal.at >= 0.45 * cp.ttlMs && second.at - renewal.at <= 0.56 * cp.ttlMs);
    await client.close();
  });
});

describe("config watch", () => {
  test("a good snapshot is applied and ACKed; the next poll resumes from its version", async () => {
    const { cp, client, target } = await setup();
    await client.enroll();
    cp.snapshots.push(goodSnapshot("7"));
    client.start(target);
    await cp.drive(() => cp.of("POST", "/v1/config/ack").length === 1);
    assert.deepEqual(cp.of("POST", "/v1/config/ack")[0]!.body, { proxy: "payments-1", version: "7", status: "ACK" });
    assert.equal(target.meshes.length, 1);
    assert.equal(target.meshes[0]!.version, "7");
    assert.equal(target.meshes[0]!.policies[0]!.route.retry.numRetries, 2);
    assert.deepEqual(target.meshes[0]!.endpoints, { payments: [{ address: "192.0.2.1:15006", identity: PAYMENTS }], orders: [] });
    assert.equal(target.auth[0]![0]!.destination, "payments");
    assert.equal(client.configVersion(), "7");
    let first = false;
    void client.firstConfig.then(() => (first = true));
    await cp.drive(() => cp.of("GET", "/v1/config").length === 2);
    assert.ok(first);
    assert.match(cp.of("GET", "/v1/config")[1]!.path, /^\/v1\/config\?proxy=payments-1&version=7&wait=30$/);
    assert.equal(cp.of("GET", "/v1/config")[1]!.options.mtls, true);
    await client.close();
  });

  test("a bad snapshot is NACKed with the sentence, nothing of it is applied, the last good one stays", async () => {
    const { cp, client, target, log } = await setup();
    await client.enroll();
    const bad = goodSnapshot("8", 3);
    bad.authorization = [{ authorization: { destination: "payments", allow: [{ from: [ORDERS, "x"], methods: ["POST"], paths: ["/charge"] }] } }];
    cp.snapshots.push(goodSnapshot("7"), bad);
    client.start(target);
    await cp.drive(() => cp.of("POST", "/v1/config/ack").length === 2);
    const nack = cp.of("POST", "/v1/config/ack")[1]!.body as { status: string; version: string; error: string };
    assert.equal(nack.status, "NACK");
    assert.equal(nack.version, "8");
    assert.match(nack.error, /^config snapshot 8: authorization\[0\]: authorization\.allow\[0\]\.from\[1\]: "x" is not a SPIFFE ID/);
    assert.equal(target.meshes.length, 1, "the bad snapshot's policies were not applied");
    assert.equal(target.auth.length, 1);
    assert.equal(client.configVersion(), "7");
    assert.ok(log.lines.some((l) => l.level === "error" && l.msg.startsWith("config snapshot rejected")));
    await cp.drive(() => cp.of("GET", "/v1/config").length === 3);
    assert.match(cp.of("GET", "/v1/config")[2]!.path, /version=8&/, "polls past the refused version instead of fetching it again");
    await client.close();
  });

  test("a snapshot with an invalid policy or endpoint is NACKed too", async () => {
    const { cp, client, target } = await setup();
    await client.enroll();
    cp.snapshots.push(
      { ...goodSnapshot("1"), policies: [{ route: { destination: "payments", timeout: "2x" } }] },
      { ...goodSnapshot("2"), endpoints: { payments: [{ address: "nowhere" }] } },
    );
    client.start(target);
    await cp.drive(() => cp.of("POST", "/v1/config/ack").length === 2);
    const [a, b] = cp.of("POST", "/v1/config/ack").map((c) => c.body as { status: string; error: string });
    assert.equal(a!.status, "NACK");
    assert.match(a!.error, /^config snapshot 1: policies\[0\]: route\.timeout: /);
    assert.equal(b!.status, "NACK");
    assert.match(b!.error, /endpoints\.payments\[0\]\.address: "nowhere" is not host:port/);
    assert.equal(target.meshes.length, 0);
    await client.close();
  });

  test("an outage across many failed polls is logged once, then once when it ends; back-off is capped", async () => {
    const { cp, client, target, log } = await setup();
    await client.enroll();
    cp.snapshots.push(goodSnapshot("7"));
    client.start(target);
    await cp.drive(() => cp.of("POST", "/v1/config/ack").length === 1);
    cp.down = true;
    const before = cp.of("GET", "/v1/config").length;
    await cp.drive(() => cp.of("GET", "/v1/config").length >= before + 20);
    const failed = cp.of("GET", "/v1/config").slice(before);
    const gaps = failed.slice(1).map((c, i) => c.at - failed[i]!.at);
    assert.ok(gaps.every((g) => g <= 10_000), `a gap above the 10 s cap: ${gaps}`);
    assert.ok(gaps.at(-1)! >= 5_000, "the back-off grew");
    assert.equal(log.lines.filter((l) => l.msg.startsWith("control plane unreachable")).length, 1);
    assert.equal(target.meshes.length, 1, "the last good config stays");
    cp.down = false;
    cp.snapshots.push(goodSnapshot("9"));
    await cp.drive(() => cp.of("POST", "/v1/config/ack").length === 2);
    assert.equal(log.lines.filter((l) => l.msg === "control plane reachable again").length, 1);
    assert.equal(log.lines.filter((l) => l.msg.startsWith("control plane unreachable")).length, 1);
    assert.equal(client.configVersion(), "9");
    await client.close();
  });
});

describe("registry", () => {
  test("registers at once and heartbeats every 5 s with address, config version and certificate", async () => {
    const { cp, client, target } = await setup();
    const m = await client.enroll();
    cp.snapshots.push(goodSnapshot("7"));
    client.start(target);
    await cp.drive(() => cp.of("PUT", "/v1/proxies/payments-1").length === 4);
    const beats = cp.of("PUT", "/v1/proxies/payments-1");
    assert.deepEqual(beats.map((b) => b.at - START), [0, 5000, 10000, 15000]);
    const info = certificateInfo(m.certPem);
    assert.deepEqual(beats[3]!.body, {
      service: "payments",
      namespace: "default",
      address: "192.0.2.1:15006",
      admin: "192.0.2.1:15000",
      runtime: "node 24",
      config_version: "7",
      cert_serial: info.serial,
      cert_not_after: new Date(info.notAfter).toISOString(),
    });
    assert.ok(beats.every((b) => b.options.mtls));
  });

  test("close() stops every loop and deregisters", async () => {
    const { cp, client, target } = await setup();
    await client.enroll();
    client.start(target);
    await cp.drive(() => cp.of("PUT", "/v1/proxies/payments-1").length === 2);
    await client.close();
    assert.equal(cp.of("DELETE", "/v1/proxies/payments-1").length, 1);
    assert.equal(cp.clock.pending(), 0, "no timer left behind");
  });
});
