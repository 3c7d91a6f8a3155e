// The reference scenario with sidecars run from the build artifacts (npm run build:bin):
// the compiled binary dist/remora-bun, the bundle under `deno run -A dist/remora.mjs`, and a
// mixed mesh, orders' sidecar on Deno, payments' on Bun and on Node. dist/ is built here
// when it is missing or older than the sources.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { http, json, onJsonLines, remora, startApp, type TestApp } from "./support/processes.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const BUNDLE = join(ROOT, "dist/remora.mjs");
const BUN_BINARY = join(ROOT, "dist/remora-bun");
const bin = (name: string) => join(ROOT, "node_modules/.bin", name);
const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";

/** How each kind of sidecar is started, and the runtime it reports in "sidecar ready". */
const RUNNERS = {
  "bun binary": { command: BUN_BINARY, args: [] as string[], runtime: /^bun / },
  "deno bundle": { command: bin("deno"), args: ["run", "-A", BUNDLE], runtime: /^deno / },
  "node bundle": { command: bin("node"), args: [BUNDLE], runtime: /^node / },
} as const;
type Runner = keyof typeof RUNNERS;

let dir: string;
let skipReason: string | undefined;
const cleanup: (() => Promise<void>)[] = [];

function newestSource(path: string): number {
  let newest = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const full = join(path, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(full) : statSync(full).mtimeMs);
  }
  return newest;
}

/** Builds dist/ when it is missing or older than src/; returns why the tests cannot run, if so. */
function ensureBuilt(): string | undefined {
  const built = existsSync(BUNDLE) && existsSync(BUN_BINARY);
  if (built && statSync(BUNDLE).mtimeMs >= newestSource(join(ROOT, "src"))) return undefined;
  const r = spawnSync(bin("node"), [join(ROOT, "scripts/build-bin.ts")], { cwd: ROOT, encoding: "utf8", timeout: 240_000 });
  if (r.status === 0 && existsSync(BUNDLE) && existsSync(BUN_BINARY)) return undefined;
  if (built) return undefined; // stale but present: test what is there rather than nothing
  return `dist/ is missing and \`node scripts/build-bin.ts\` failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr ?? "").trim().slice(-500)}`;
}

interface Sidecar {
  child: ChildProcess;
  runtime: string;
  outbound: string;
  inbound?: string;
  admin: string;
  stop(): Promise<void>;
}

function startSidecar(runner: Runner, config: string, timeoutMs = 30_000): Promise<Sidecar> {
  const { command, args } = RUNNERS[runner];
  return new Promise((ok, fail) => {
    const child = spawn(command, [...args, "proxy", "--config", config], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    const t = setTimeout(() => (child.kill("SIGKILL"), fail(new Error(`${runner} sidecar not ready in ${timeoutMs} ms: ${stderr}`))), timeoutMs);
    child.stderr!.on("data", (c) => (stderr += c));
    onJsonLines(child.stdout!, (rec) => {
      if (rec.msg !== "sidecar ready") return;
      clearTimeout(t);
      ok({
        child,
        runtime: String(rec.runtime),
        outbound: rec.outbound as string,
        inbound: rec.inbound as string | undefined,
        admin: rec.admin as string,
        stop: () => stop(child),
      });
    });
    child.on("exit", (code) => (clearTimeout(t), fail(new Error(`${runner} sidecar exited ${code}: ${stderr}`))));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => (clearTimeout(t), ok()));
    child.kill("SIGTERM");
  });
}

async function config(name: string, body: string): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, body);
  return path;
}

const identity = (service: string) => `identity: { cert: certs/${service}.pem, key: certs/${service}-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
`;

const policy = `policies:
  - route:
      destination: payments
      load_balancer: round_robin
      retry_policy: { retry_on: "connect-failure,5xx,reset", num_retries: 2, per_try_timeout: 250ms }
      tls: { mode: ISTIO_MUTUAL }
    outlier_detection: { consecutive_5xx: 5, base_ejection_time: 30s, interval: 200ms }
`;

before(async () => {
  skipReason = ensureBuilt();
  if (skipReason) {
    console.error(`SKIPPING binaries.test.ts: ${skipReason}`);
    return;
  }
  dir = await mkdtemp(join(tmpdir(), "remora-bin-"));
  const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "payments"]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** B1 resets, B2 answers: every call is 200 from B2, B1 is ejected after 5 failures. */
async function referenceScenario(orders: Runner, b1: Runner, b2: Runner, name: string): Promise<void> {
  const b1app = await startApp("B1", "reset");
  const b2app = await startApp("B2");
  cleanup.push(() => b1app.close(), () => b2app.close());
  const inbound = (app: TestApp) => `inbound: { listen: "127.0.0.1:0", app: "${app.address}", mode: STRICT }\n`;
  const p1 = await startSidecar(b1, await config(`${name}-b1`, identity("payments") + inbound(b1app)));
  cleanup.push(() => p1.stop());
  const p2 = await startSidecar(b2, await config(`${name}-b2`, identity("payments") + inbound(b2app)));
  cleanup.push(() => p2.stop());
  const endpoints = `endpoints:
  payments:
    - { address: "${p1.inbound}", identity: ${PAYMENTS} }
    - { address: "${p2.inbound}", identity: ${PAYMENTS} }
`;
  const o = await startSidecar(orders, await config(`${name}-orders`, identity("orders") + endpoints + policy));
  cleanup.push(() => o.stop());

  for (const [runner, sidecar] of [[b1, p1], [b2, p2], [orders, o]] as const) assert.match(sidecar.runtime, RUNNERS[runner].runtime, runner);
  for (let i = 0; i < 12; i++) {
    const r = await http(o.outbound, "http://payments/charge", { method: "POST", body: `{"n":${i}}` });
    assert.equal(r.status, 200, `call ${i}: ${r.body}`);
    assert.equal(r.body, "B2");
  }
  assert.equal(b1app.hits, 5);
  type Ep = { destination: string; endpoints: { address: string; state: string }[] }[];
  const view = await json<Ep>(o.admin, "/endpoints");
  assert.equal(view[0]!.endpoints.find((e) => e.address === p1.inbound)!.state, "ejected");
  assert.match(String(b2app.lastHeaders?.["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders$/);
  const metrics = await http(o.admin, "/metrics");
  assert.match(metrics.body, /remora_retries_total\{destination="payments"\} [1-9]/);
}

describe("sidecars from the build artifacts", { timeout: 180_000 }, () => {
  test("every sidecar is dist/remora-bun (the compiled binary)", async (t) => {
    if (skipReason) return t.skip(skipReason);
    await referenceScenario("bun binary", "bun binary", "bun binary", "bun");
  });

  test("every sidecar is `deno run -A dist/remora.mjs`", async (t) => {
    if (skipReason) return t.skip(skipReason);
    await referenceScenario("deno bundle", "deno bundle", "deno bundle", "deno");
  });

  test("a mixed mesh: orders on Deno, payments on Bun and on Node", async (t) => {
    if (skipReason) return t.skip(skipReason);
    await referenceScenario("deno bundle", "bun binary", "node bundle", "mixed");
  });

  test("the compiled binary runs with nothing beside it", async (t) => {
    if (skipReason) return t.skip(skipReason);
    const empty = await mkdtemp(join(tmpdir(), "remora-lone-"));
    cleanup.push(() => rm(empty, { recursive: true, force: true }));
    const lone = join(empty, "remora-bun");
    spawnSync("cp", [BUN_BINARY, lone]);
    const run = (args: string[]) => spawnSync(lone, args, { cwd: empty, encoding: "utf8", env: { PATH: "/usr/bin:/bin" }, timeout: 20_000 });
    const v = run(["version"]);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^remora \S+ \(bun \S+, adapter bun\)/);
    const c = run(["certs", "--out", "certs", "orders"]);
    assert.equal(c.status, 0, c.stderr);
    assert.ok(existsSync(join(empty, "certs/orders.pem")));
    const help = run(["proxy", "--help"]);
    assert.equal(help.status, 0, help.stderr);
  });
});
