// The reference scenario with the control plane: every sidecar enrolled by join token,
// endpoints from the registry, policy from `remora apply`; then policy changes reach the
// sidecars in place, with no process restarted.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { http, json, remora, startApp, startProxyWith, type Proxy, type TestApp } from "./support/processes.ts";
import { freePort, startControl, type ControlProcess } from "./support/control-process.ts";

let dir: string;
let control: ControlProcess;
const cleanup: (() => Promise<void>)[] = [];

const policy = (numRetries: number, tls: string) => `route:
  destination: payments
  load_balancer: round_robin
  retry_policy:
    retry_on: connect-failure,5xx,reset
    num_retries: ${numRetries}
    per_try_timeout: 250ms
  tls:
    mode: ${tls}
outlier_detection:
  consecutive_5xx: 5
  base_ejection_time: 30s
`;

async function apply(name: string, text: string) {
  const file = join(dir, name);
  await writeFile(file, text);
  const r = await remora(["apply", "-f", file, "--control", control.url, "--data", join(dir, "cp")]);
  assert.equal(r.code, 0, r.stderr);
}

async function token(service: string): Promise<string> {
  const r = await remora(["token", "--service", service, "--control", control.url, "--data", join(dir, "cp")]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function sidecar(service: string, app?: TestApp): Promise<Proxy> {
  const args = ["--control", control.url, "--ca", join(dir, "cp", "root.pem"), "--token", await token(service), "--service", service, "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
  if (app) args.push("--app", app.address, "--inbound", "127.0.0.1:0");
  const p = await startProxyWith(args);
  cleanup.push(() => p.stop());
  return p;
}

type Config = { version: string; policies: { route: { retry_policy: { num_retries: number }; tls: { mode: string } } }[]; endpoints: Record<string, unknown[]> };

/** Polls the sidecar's /config until `ok` holds; returns how long that took. */
async function until(p: Proxy, ok: (c: Config) => boolean, limitMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const c = await json<Config>(p.admin, "/config").catch(() => undefined);
    if (c && ok(c)) return Date.now() - start;
    if (Date.now() - start > limitMs) assert.fail(`condition not met within ${limitMs} ms: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-mesh-"));
  control = await startControl(["--data", join(dir, "cp"), "--listen", `127.0.0.1:${await freePort()}`]);
  cleanup.push(() => control.stop());
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

test("reference scenario through the control plane, then retries and TLS mode changed in place", async () => {
  await apply("payments.yaml", policy(2, "ISTIO_MUTUAL"));
  const b1app = await startApp("B1", "reset");
  const b2app = await startApp("B2");
  cleanup.push(() => b1app.close(), () => b2app.close());
  const b1 = await sidecar("payments", b1app);
  const b2 = await sidecar("payments", b2app);
  const orders = await sidecar("orders");
  const pids = [b1, b2, orders].map((p) => p.child.pid);

  // Endpoints from the registry reach the caller (well within a second in practice).
  await until(orders, (c) => (c.endpoints.payments?.length ?? 0) === 2 && c.policies.length === 1, 5000);

  for (let i = 0; i < 12; i++) {
    const r = await http(orders.outbound, "http://payments/charge", { method: "POST", body: "{}" });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.body, "B2");
  }
  assert.equal(b1app.hits, 5, "B1 is ejected after 5 consecutive failures and gets nothing after");
  assert.match(String(b2app.lastHeaders?.["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders$/);

  // num_retries 2 -> 0 reaches the sidecar in place within 2 s.
  const before = (await json<Config>(orders.admin, "/config")).version;
  await apply("payments-0.yaml", policy(0, "ISTIO_MUTUAL"));
  const took = await until(orders, (c) => c.version !== before && c.policies[0]?.route.retry_policy.num_retries === 0, 2000);
  assert.ok(took <= 2000);

  // TLS mode DISABLE: the caller now sends plaintext, which B's STRICT inbound refuses:
  // the behaviour changes with the config, and back again.
  await apply("payments-plain.yaml", policy(0, "DISABLE"));
  await until(orders, (c) => c.policies[0]?.route.tls.mode === "DISABLE", 2000);
  const plain = await http(orders.outbound, "http://payments/charge");
  assert.equal(plain.status, 503, plain.body);
  assert.equal(b2app.hits, 12 + 0, "a plaintext request never reaches the app behind a STRICT sidecar");
  await apply("payments-mtls.yaml", policy(2, "ISTIO_MUTUAL"));
  await until(orders, (c) => c.policies[0]?.route.tls.mode === "MUTUAL", 2000);
  assert.equal((await http(orders.outbound, "http://payments/charge")).status, 200);

  // No process was restarted, and every proxy ACKed the current config.
  assert.deepEqual([b1, b2, orders].map((p) => p.child.pid), pids);
  assert.ok([b1, b2, orders].every((p) => p.child.exitCode === null));
  const got = await remora(["get", "proxies", "--json", "--control", control.url, "--data", join(dir, "cp")]);
  assert.equal(got.code, 0, got.stderr);
  const proxies = JSON.parse(got.stdout) as { service: string; status: string }[];
  assert.equal(proxies.length, 3);
  const deadline = Date.now() + 3000;
  let statuses = proxies.map((p) => p.status);
  while (statuses.some((s) => s !== "ACK") && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    const again = await remora(["get", "proxies", "--json", "--control", control.url, "--data", join(dir, "cp")]);
    statuses = (JSON.parse(again.stdout) as { status: string }[]).map((p) => p.status);
  }
  assert.deepEqual(statuses, ["ACK", "ACK", "ACK"]);

  // The control plane killed with kill -9 mid-traffic: the data plane keeps serving with
  // its last good config and certificates; restarted on the same DIR, it resumes.
  const address = control.address;
  const traffic = (async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push((await http(orders.outbound, "http://payments/charge")).status);
    return statuses;
  })();
  await control.kill9();
  assert.deepEqual(new Set(await traffic), new Set([200]));
  control = await startControl(["--data", join(dir, "cp"), "--listen", address]);
  const after = await remora(["get", "policies", "--json", "--control", control.url, "--data", join(dir, "cp")]);
  assert.equal(after.code, 0, after.stderr);
  assert.match(after.stdout, /"destination": "payments"/);
});
