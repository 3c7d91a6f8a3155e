// remora embedded in a program (src/mod.ts): createMesh from a static config and from the
// control plane, calling a payments sidecar over mTLS with retries and ejection; and the
// example program examples/embed/client.ts run as a child on this same runtime.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createMesh, meshFetch, type Mesh } from "../../src/mod.ts";
import { detectRuntime } from "../../src/runtime/detect.ts";
import { remora, startApp, startProxy, startProxyWith, type Proxy, type TestApp } from "./support/processes.ts";
import { freePort, startControl, type ControlProcess } from "./support/control-process.ts";
import { closedPort } from "./helpers/loopback.ts";

const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const EXAMPLE = fileURLToPath(new URL("../../examples/embed/client.ts", import.meta.url));

let dir: string;
let app: TestApp;
let payments: Proxy;
let dead: string;
const cleanup: (() => Promise<void>)[] = [];

const policy = {
  route: {
    destination: "payments",
    load_balancer: "round_robin",
    retry_policy: { retry_on: "connect-failure,5xx,reset", num_retries: 2, per_try_timeout: "250ms" },
    tls: { mode: "ISTIO_MUTUAL" },
  },
  outlier_detection: { consecutive_5xx: 5, base_ejection_time: "30s" },
};

function staticConfig() {
  return {
    identity: { cert: join(dir, "certs/orders.pem"), key: join(dir, "certs/orders-key.pem"), bundle: join(dir, "certs/root.pem") },
    endpoints: { payments: [{ address: dead, identity: PAYMENTS }, { address: payments.inbound!, identity: PAYMENTS }] },
    policies: [policy],
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-embed-"));
  const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "payments"]);
  assert.equal(r.code, 0, r.stderr);
  app = await startApp("B2");
  cleanup.push(() => app.close());
  await writeFile(join(dir, "payments.yaml"), `identity: { cert: certs/payments.pem, key: certs/payments-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
inbound: { listen: "127.0.0.1:0", app: "${app.address}", mode: STRICT }
`);
  payments = await startProxy(join(dir, "payments.yaml"));
  cleanup.push(() => payments.stop());
  dead = `127.0.0.1:${await closedPort()}`; // an endpoint that refuses: connect-failure
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe("createMesh from a static config", () => {
  let mesh: Mesh;
  before(async () => {
    mesh = await createMesh({ config: staticConfig() });
  });
  after(() => mesh.close());

  test("calls by logical name over mTLS, retries past a dead endpoint, ejects it and counts it all", async () => {
    assert.equal(mesh.identity, "spiffe://cluster.local/ns/default/sa/orders");
    for (let i = 0; i < 12; i++) {
      const res = await mesh.fetch("http://payments/charge", { method: "POST", body: `{"n":${i}}` });
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(await res.text(), "B2");
    }
    // payments' sidecar verified this program's certificate and told its app who called.
    assert.match(String(app.lastHeaders?.["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders$/);
    assert.match(String(app.lastHeaders?.["traceparent"]), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);

    const payments = mesh.destinations().find((d) => d.name === "payments");
    assert.equal(payments?.endpoints.find((e) => e.address === dead)?.ejected, true, "the dead endpoint should be ejected");
    const text = mesh.metrics();
    assert.match(text, /remora_requests_total\{direction="outbound",destination="payments",code_class="2xx"\} 12/);
    assert.match(text, /remora_retries_total\{destination="payments"\} [1-9]/);
    assert.match(text, /remora_outlier_ejections_total\{[^}]*\} 1/);
  });

  test("an unknown name is a 404 naming it; meshFetch serves the first mesh made", async () => {
    const res = await mesh.fetch("http://paymnts/charge");
    assert.equal(res.status, 404);
    assert.match(await res.text(), /paymnts/);
    assert.equal(await (await meshFetch("http://payments/charge")).text(), "B2");
  });

  test("a config naming a missing certificate is one sentence naming the field and file", async () => {
    const bad = { ...staticConfig(), identity: { ...staticConfig().identity, cert: join(dir, "certs/nobody.pem") } };
    await assert.rejects(createMesh({ config: bad }), /identity\.cert .*nobody\.pem: no such file/);
  });
});

describe("createMesh enrolled with the control plane", () => {
  let control: ControlProcess;
  before(async () => {
    control = await startControl(["--data", join(dir, "cp"), "--listen", `127.0.0.1:${await freePort()}`]);
    cleanup.push(() => control.stop());
  });

  test("gets an SVID by join token, the endpoints from the registry, and calls payments", async () => {
    const token = async (service: string) => {
      const r = await remora(["token", "--service", service, "--control", control.url, "--data", join(dir, "cp")]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    };
    const b2 = await startApp("B2-enrolled");
    cleanup.push(() => b2.close());
    const sidecar = await startProxyWith(["--control", control.url, "--ca", join(dir, "cp", "root.pem"), "--token", await token("payments"), "--service", "payments",
      "--app", b2.address, "--inbound", "127.0.0.1:0", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"]);
    cleanup.push(() => sidecar.stop());

    const mesh = await createMesh({ control: { url: control.url, ca: join(dir, "cp", "root.pem"), token: await token("orders"), service: "orders" } });
    try {
      assert.equal(mesh.identity, "spiffe://cluster.local/ns/default/sa/orders");
      // The registry may publish payments' address a moment after its sidecar is ready.
      let res: Response | undefined;
      for (let i = 0; i < 50 && res?.status !== 200; i++) {
        res = await mesh.fetch("http://payments/charge", { method: "POST", body: "{}" });
        if (res.status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(res?.status, 200);
      assert.equal(await res!.text(), "B2-enrolled");
      assert.match(String(b2.lastHeaders?.["x-forwarded-client-cert"]), /sa\/orders$/);
    } finally {
      await mesh.close();
    }
  });
});

test("examples/embed/client.ts runs on this runtime and calls payments", async () => {
  const file = join(dir, "embed.yaml");
  await writeFile(file, JSON.stringify({ ...staticConfig(), endpoints: { payments: [{ address: payments.inbound!, identity: PAYMENTS }] } }));
  const args = detectRuntime() === "deno" ? ["run", "-A", EXAMPLE, file] : [EXAMPLE, file];
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CALLS: "3" } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const t = setTimeout(() => child.kill("SIGKILL"), 30_000);
    child.on("error", reject);
    child.on("close", (code) => (clearTimeout(t), resolve({ code, stdout, stderr })));
  });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /call 0: 200 B2\ncall 1: 200 B2\ncall 2: 200 B2/);
  assert.match(out.stdout, /remora_requests_total\{direction="outbound",destination="payments",code_class="2xx"\} 3/);
});
