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

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

// Under `deno test` this test stops making progress (not yet diagnosed; Deno's
// node:child_process misreports signalled children, see docs/runtimes.md). The logs it
// reads are written by the same code on every runtime; it runs on Node and Bun.
const denoHangs = "Deno" in globalThis ? "hangs under deno test, not yet diagnosed (docs/runtimes.md)" : undefined;
if (denoHangs) console.error(`\n*** SKIPPING the no-secrets log test on Deno: ${denoHangs} ***\n`);

test("sidecar and control-plane logs hold no join token, admin token or private key", { skip: denoHangs ?? false }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "remora-secrets-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const data = join(dir, "cp");
  const control: ControlProcess = await startControl(["--data", data, "--listen", `127.0.0.1:${await freePort()}`]);
  cleanup.push(() => control.stop());
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
    cleanup.push(() => p.stop());
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
  await payments.stop();
  await orders.stop();
  await control.stop();

  const text = [control.logs, payments.logs, orders.logs].map((l) => JSON.stringify(l)).join("\n") + refused.stdout + refused.stderr;
  assert.ok(text.length > 1000, "the logs were collected");
  assert.ok(control.logs.length > 0 && payments.logs.length > 0 && orders.logs.length > 0);
  for (const t of tokens) assert.ok(!text.includes(t), "a join token appears in the logs");
  // A JWT's signature alone is a secret too (the header and claims are not).
  for (const t of tokens) assert.ok(!text.includes(t.split(".")[2]!), "a join token's signature appears in the logs");
  assert.ok(!text.includes(adminToken), "the admin token appears in the logs");
  assert.ok(!/PRIVATE KEY/.test(text), "a private key appears in the logs");
});
