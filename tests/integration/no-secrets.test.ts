// Nothing logs secrets: the JSON logs of a control plane and sidecars, through enrollment,
// traffic, a refused join token and a drain, contain neither the join token, the admin
// token nor any private key.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { http, json, remora, startApp, startProxyWith, type Proxy } from "./support/processes.ts";
import { freePort, startControl, type ControlProcess } from "./support/control-process.ts";
import { stopChild } from "./support/signal.ts";

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

test("sidecar and control-plane logs hold no join token, admin token or private key", async () => {
  const dir = await mkdtemp(join(tmpdir(), "remora-secrets-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, "cp");
  const control: ControlProcess = await startControl(["--data", data, "--listen", `127.0.0.1:${await freePort()}`]);
  cleanup.push(() => stopChild(control.child).then(() => {}));
  const adminToken = (await readFile(join(data, "admin-token"), "utf8")).trim();
  const tokens: string[] = [];
  const token = async (service: string) => {
    const r = await remora(["token", "--service", service, "--control", control.url, "--data", data]);
    assert.equal(r.code, 0, r.stderr);
    tokens.push(r.stdout.trim());
    return r.stdout.trim();
  };
  const start = async (service: string, extra: string[]): Promise<Proxy> => {
    const p = await startProxyWith(["--control", control.url, "--ca", join(data, "root.pem"), "--token", await token(service), "--service", service,
      "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain-delay", "0s", ...extra], 30_000);
    cleanup.push(() => stopChild(p.child).then(() => {}));
    return p;
  };
  const app = await startApp("P");
  cleanup.push(() => app.close());
  const payments = await start("payments", ["--app", app.address, "--inbound", "127.0.0.1:0"]);
  const orders = await start("orders", []);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const eps = await json<{ destination: string; endpoints: unknown[] }[]>(orders.admin, "/endpoints").catch(() => []);
    if (eps.some((d) => d.destination === "payments" && d.endpoints.length > 0)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal((await http(orders.outbound, "http://payments/x")).status, 200);
  assert.equal((await http(orders.outbound, "http://nowhere/x")).status >= 400, true);

  // Failure paths: a forged join token, and a caller presenting it as a bearer to the control API.
  const forged = `${tokens[0]!.slice(0, -4)}AAAA`;
  tokens.push(forged);
  const refused = await remora(["proxy", "--control", control.url, "--ca", join(data, "root.pem"), "--token", forged, "--service", "payments",
    "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"], 10_000);
  await fetch(`${control.url}/v1/proxies`, { headers: { authorization: `Bearer ${forged}` } }).catch(() => {});
  // By pid, not child.kill(): see support/signal.ts (Deno reported these as signalled and a
  // second stop in the cleanup waited for an exit that had already happened).
  assert.deepEqual(await stopChild(payments.child), { code: 0, signal: null }, "payments drains and exits 0");
  await stopChild(orders.child);
  await stopChild(control.child);
  assert.ok(payments.logs.some((l) => l.msg === "drained"), "the drain's log lines were collected too");

  const text = [control.logs, payments.logs, orders.logs].map((l) => JSON.stringify(l)).join("\n") + refused.stdout + refused.stderr;
  assert.ok(text.length > 1000, "the logs were collected");
  assert.ok(control.logs.length > 0 && payments.logs.length > 0 && orders.logs.length > 0);
  for (const t of tokens) assert.ok(!text.includes(t), "a join token appears in the logs");
  // A JWT's signature alone is a secret too (the header and claims are not).
  for (const t of tokens) assert.ok(!text.includes(t.split(".")[2]!), "a join token's signature appears in the logs");
  assert.ok(!text.includes(adminToken), "the admin token appears in the logs");
  assert.ok(!/PRIVATE KEY/.test(text), "a private key appears in the logs");
});
