// `remora control` as a real process: admin commands over TLS, a sidecar-shaped client
// enrolling with a join token and then using its SVID (mTLS), and kill -9 + restart on the
// same data directory keeping the CA, policies and registered proxies.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCsr, exportPrivateKeyPem, generateKeyPair } from "../../src/core/identity/ca.ts";
import { createPeerVerifier, trustBundleFromPem } from "../../src/core/identity/svid.ts";
import { systemClock } from "../../src/core/system-clock.ts";
import { loadRuntime } from "../../src/runtime/detect.ts";
import { freePort, startControl, type ControlProcess } from "./support/control-process.ts";
import { remora } from "./support/processes.ts";

const CONTROL_ID = "spiffe://cluster.local/ns/remora-system/sa/control";
const PAYMENTS_ID = "spiffe://cluster.local/ns/default/sa/payments";

describe("remora control", () => {
  const running: ControlProcess[] = [];
  let dir = "";
  after(async () => {
    for (const c of running) await c.kill9();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("enrol, apply, get; kill -9 and restart on the same data directory", async () => {
    dir = await mkdtemp(join(tmpdir(), "remora-control-"));
    const data = join(dir, "data");
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    let control = await startControl(["--data", data, "--listen", listen, "--cert-ttl", "1h"]);
    running.push(control);
    const flags = ["--data", data, "--control", control.url];

    // Admin commands over TLS, verifying the control plane's SPIFFE ID.
    const tok = await remora(["token", "--service", "payments", ...flags]);
    assert.equal(tok.code, 0, tok.stderr);
    const joinToken = tok.stdout.trim();
    assert.match(joinToken, /^[\w-]+\.[\w-]+\.[\w-]+$/);

    const policy = join(dir, "payments.yaml");
    await writeFile(policy, "route:\n  destination: payments\n  retry_policy:\n    num_retries: 2\n");
    const applied = await remora(["apply", "-f", policy, ...flags]);
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /applied payments \(config version 2\)/);

    const bad = join(dir, "bad.yaml");
    await writeFile(bad, "route:\n  destination: payments\n  timeout: 2x\n");
    const refused = await remora(["apply", "-f", bad, ...flags]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /bad\.yaml: route\.timeout: "2x" is not a duration/);

    // A sidecar-shaped client: join token -> SVID (no client cert), then the SVID over mTLS.
    const root = await readFile(join(data, "root.pem"), "utf8");
    const runtime = await loadRuntime();
    const bundle = trustBundleFromPem(root, "cluster.local");
    const keys = await generateKeyPair();
    const svid = { certPem: "", keyPem: await exportPrivateKeyPem(keys.privateKey), bundlePem: root };
    const upstream = runtime.createUpstream({ material: () => ({ ...svid }), verifyPeer: createPeerVerifier(() => bundle, systemClock, "cluster.local") });
    const endpoint = { address: listen, identity: CONTROL_ID };
    const send = (path: string, init: RequestInit, tls: "SIMPLE" | "MUTUAL") =>
      upstream.send(new Request(`${control.url}${path}`, init), endpoint, { signal: AbortSignal.timeout(10_000), tls });
    try {
      const csr = await createCsr({ keys, spiffeId: "spiffe://cluster.local/ns/default/sa/orders" });
      const issued = await send("/v1/identity", { method: "POST", headers: { authorization: `Bearer ${joinToken}`, "content-type": "application/json" }, body: JSON.stringify({ csr }) }, "SIMPLE");
      assert.equal(issued.status, 200);
      const identity = (await issued.json()) as { id: string; cert: string };
      assert.equal(identity.id, PAYMENTS_ID);
      svid.certPem = identity.cert;

      const noCreds = await send("/v1/config", { method: "GET" }, "SIMPLE");
      assert.equal(noCreds.status, 401);
      await noCreds.text();

      const reg = await send(
        "/v1/proxies/payments-1",
        { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify({ service: "payments", namespace: "default", address: "127.0.0.1:15006", config_version: "2" }) },
        "MUTUAL",
      );
      assert.equal(reg.status, 200, await reg.clone().text());
      await reg.text();
      const config = await send("/v1/config?proxy=payments-1", { method: "GET" }, "MUTUAL");
      const snap = (await config.json()) as { version: string; endpoints: Record<string, unknown> };
      assert.deepEqual(snap.endpoints, { payments: [{ address: "127.0.0.1:15006", identity: PAYMENTS_ID }] });
    } finally {
      upstream.close();
    }

    const proxies = await remora(["get", "proxies", ...flags]);
    assert.equal(proxies.code, 0, proxies.stderr);
    assert.match(proxies.stdout, /^PROXY\s+SERVICE\s+IDENTITY/);
    assert.match(proxies.stdout, /payments-1\s+payments\s+spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
    assert.ok(control.logs.some((l) => l.msg === "credential refused"), "the request without credentials was logged");

    // kill -9, restart on the same directory: same root, policies and proxies.
    await control.kill9();
    control = await startControl(["--data", data, "--listen", listen, "--cert-ttl", "1h"]);
    running.push(control);
    assert.equal(await readFile(join(data, "root.pem"), "utf8"), root);
    const policies = await remora(["get", "policies", "--json", ...flags]);
    assert.equal(policies.code, 0, policies.stderr);
    assert.deepEqual(JSON.parse(policies.stdout), { policies: [{ route: { destination: "payments", retry_policy: { num_retries: 2 } } }], authorization: [] });
    const after9 = await remora(["get", "proxies", "--json", ...flags]);
    assert.deepEqual((JSON.parse(after9.stdout) as { proxy: string }[]).map((p) => p.proxy), ["payments-1"]);

    await control.stop();
    const down = await remora(["get", "proxies", ...flags]);
    assert.equal(down.code, 1);
    assert.match(down.stderr, /^remora: cannot reach the control plane at https:\/\/127\.0\.0\.1:\d+: .*connection refused/);
  });
});
