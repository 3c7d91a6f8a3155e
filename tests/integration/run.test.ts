// `remora run -- APP`: the app starts only once its sidecar is ready, its first call goes
// through the mesh, its exit code is remora run's, and the sidecar is gone afterwards.
// Also the admin POST /shutdown (loopback only) that platforms use to end a sidecar.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { remora, startApp, startProxy, type Proxy, type TestApp } from "./support/processes.ts";

const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";

let dir: string;
let app: TestApp;
let payments: Proxy;
let ordersConfig: string;

async function file(name: string, body: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, body);
  return path;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-run-"));
  const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "payments"]);
  assert.equal(r.code, 0, r.stderr);
  app = await startApp("B2");
  payments = await startProxy(
    await file(
      "payments.yaml",
      `identity: { cert: certs/payments.pem, key: certs/payments-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
inbound: { listen: "127.0.0.1:0", app: "${app.address}", mode: STRICT }
`,
    ),
  );
  ordersConfig = await file(
    "orders.yaml",
    `identity: { cert: certs/orders.pem, key: certs/orders-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
endpoints:
  payments:
    - { address: "${payments.inbound}", identity: ${PAYMENTS} }
`,
  );
});

after(async () => {
  await payments?.stop();
  await app?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Whether any process still has this sidecar's config on its command line. */
async function sidecarRunning(config: string): Promise<boolean> {
  const r = await new Promise<number | null>((ok) => {
    import("node:child_process").then(({ spawn }) => spawn("pgrep", ["-f", `proxy --config ${config}`]).on("close", ok));
  });
  return r === 0;
}

describe("remora run", () => {
  test("the app's very first call goes through the mesh; stdout is the app's; the sidecar is gone afterwards", async () => {
    const hits = app.hits;
    // curl fires the moment it starts: a sidecar that was not ready would make it fail.
    const r = await remora(["run", "--config", ordersConfig, "--proxy-env", "--", "curl", "-sS", "--max-time", "5", "-X", "POST", "http://payments/charge"], 60_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "B2");
    assert.equal(app.hits, hits + 1);
    assert.equal(await sidecarRunning(ordersConfig), false, "the sidecar outlived remora run");
  });

  test("remora run exits with the app's exit code", async () => {
    const r = await remora(["run", "--config", ordersConfig, "--", "sh", "-c", "exit 7"], 60_000);
    assert.equal(r.code, 7, r.stderr);
  });

  test("a sidecar that cannot start keeps the app from starting, with one sentence and exit 1", async () => {
    const r = await remora(["run", "--config", join(dir, "missing.yaml"), "--", "sh", "-c", "echo started"], 60_000);
    assert.equal(r.code, 1);
    assert.doesNotMatch(r.stdout, /started/);
    assert.match(r.stderr, /remora: the sidecar exited before it was ready/);
  });

  test("without a command after -- it says how to use it", async () => {
    const r = await remora(["run", "--config", ordersConfig]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give the app's command after --/);
  });

  test("a sidecar whose remora run is killed outright (SIGKILL) drains and exits instead of lingering", async () => {
    const { spawn } = await import("node:child_process");
    const { REMORA } = await import("./support/processes.ts");
    const run = spawn(process.execPath, [REMORA, "run", "--config", ordersConfig, "--", "sleep", "30"], { stdio: "ignore" });
    try {
      const deadline = Date.now() + 30_000;
      while (!(await sidecarRunning(ordersConfig))) {
        assert.ok(Date.now() < deadline, "the sidecar never started");
        await new Promise((r) => setTimeout(r, 100));
      }
      run.kill("SIGKILL");
      const gone = Date.now() + 15_000;
      while (await sidecarRunning(ordersConfig)) {
        assert.ok(Date.now() < gone, "the sidecar outlived its killed remora run by 15 s");
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      run.kill("SIGKILL");
    }
  });

  test("POST /shutdown on the admin port drains the sidecar and it exits 0; GET is refused", async () => {
    const p = await startProxy(ordersConfig);
    const get = await fetch(`http://${p.admin}/shutdown`);
    assert.equal(get.status, 405);
    await get.arrayBuffer();
    const exited = new Promise<number | null>((ok) => p.child.once("exit", (code) => ok(code)));
    const res = await fetch(`http://${p.admin}/shutdown`, { method: "POST" });
    assert.equal(res.status, 202);
    await res.arrayBuffer();
    assert.equal(await exited, 0);
  });
});
