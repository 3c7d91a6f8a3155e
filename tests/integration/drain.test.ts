// Graceful drain: a rolling restart of every payments replica (SIGTERM, wait for the exit,
// start a new one enrolled by token) under a steady load from orders loses no request.
// The sidecar deregisters first, serves through the propagation delay, then closes.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { http, json, remora, startApp, startProxyWith, type Proxy, type TestApp } from "./support/processes.ts";
import { freePort, startControl, type ControlProcess } from "./support/control-process.ts";
import { exited, signal, stopChild } from "./support/signal.ts";

let dir: string;
let control: ControlProcess;
const cleanup: (() => Promise<void>)[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-drain-"));
  control = await startControl(["--data", join(dir, "cp"), "--listen", `127.0.0.1:${await freePort()}`]);
  cleanup.push(() => stopChild(control.child).then(() => {}));
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

async function token(service: string): Promise<string> {
  const r = await remora(["token", "--service", service, "--control", control.url, "--data", join(dir, "cp")]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim();
}

async function sidecar(service: string, app?: TestApp, extra: string[] = []): Promise<Proxy> {
  const args = ["--control", control.url, "--ca", join(dir, "cp", "root.pem"), "--token", await token(service), "--service", service,
    "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--drain-delay", "1s", "--drain-timeout", "5s"];
  if (app) args.push("--app", app.address, "--inbound", "127.0.0.1:0");
  const p = await startProxyWith([...args, ...extra], 30_000);
  cleanup.push(() => stopChild(p.child).then(() => {}));
  return p;
}

type Endpoints = { destination: string; endpoints: { address: string }[] }[];

async function payments(orders: Proxy): Promise<string[]> {
  const list = await json<Endpoints>(orders.admin, "/endpoints").catch(() => [] as Endpoints);
  return (list.find((d) => d.destination === "payments")?.endpoints ?? []).map((e) => e.address).sort();
}

async function until(what: string, ok: () => Promise<boolean>, limitMs = 15_000): Promise<void> {
  const start = Date.now();
  while (!(await ok())) {
    if (Date.now() - start > limitMs) assert.fail(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("rolling restart of every payments replica under steady load loses zero requests", async () => {
  const file = join(dir, "payments.yaml");
  await writeFile(file, `route:
  destination: payments
  load_balancer: round_robin
  retry_policy:
    retry_on: connect-failure,reset,5xx
    num_retries: 2
    per_try_timeout: 2s
  tls:
    mode: ISTIO_MUTUAL
`);
  const applied = await remora(["apply", "-f", file, "--control", control.url, "--data", join(dir, "cp")]);
  assert.equal(applied.code, 0, applied.stderr);

  const apps = [await startApp("P1"), await startApp("P2")];
  cleanup.push(...apps.map((a) => () => a.close()));
  const replicas = [await sidecar("payments", apps[0]), await sidecar("payments", apps[1])];
  // Watches payments from the start (whichever config mode is the default), so /endpoints shows it before the first request.
  const orders = await sidecar("orders", undefined, ["--destinations", "payments"]);
  await until("orders sees both replicas", async () => (await payments(orders)).length === 2);

  // A steady load, bounded in count and time: 4 workers, each one request after another.
  let running = true;
  const loadDeadline = Date.now() + 120_000;
  const failures: string[] = [];
  let sent = 0;
  const worker = async () => {
    while (running && sent < 40_000 && Date.now() < loadDeadline) {
      sent++;
      const r = await http(orders.outbound, "http://payments/charge", { method: "POST", body: "{}" }).catch((e: Error) => ({ status: 0, body: e.message }));
      if (r.status !== 200) failures.push(`${r.status} ${r.body.trim()}`);
      await new Promise((ok) => setTimeout(ok, 5));
    }
  };
  const load = Promise.all([worker(), worker(), worker(), worker()]);

  try {
    for (let i = 0; i < replicas.length; i++) {
    const old = replicas[i]!;
    const exit = exited(old.child);
    const sentBefore = sent;
    // By pid: Deno's child.kill() makes the exit read (null, SIGTERM) even after a clean drain (support/signal.ts).
    signal(old.child, "SIGTERM");
    assert.deepEqual(await exit, { code: 0, signal: null }, "the drained sidecar exits cleanly");
    // Its log shows the order: deregistered and drained.
    const msgs = old.logs.map((l) => l.msg);
    assert.ok(msgs.includes("draining") && msgs.indexOf("draining") < msgs.indexOf("drained"), msgs.join(", "));
    assert.ok(sent > sentBefore, "load kept flowing during the drain");
    replicas[i] = await sidecar("payments", apps[i]);
    await until("orders sees the new replica", async () => (await payments(orders)).includes(replicas[i]!.inbound!));
  }
  await new Promise((ok) => setTimeout(ok, 300));
  } finally {
    // A failed step must not leave the load running (the test would never end).
    running = false;
    await load;
  }

  assert.ok(sent >= 50, `only ${sent} requests were sent`);
  assert.deepEqual(failures, [], `${failures.length} of ${sent} requests failed`);
  assert.ok(apps[0]!.hits > 0 && apps[1]!.hits > 0);
});
