// `remora demo` as a new user runs it: it must finish and exit 0, and its narration must
// come from what the sidecars, the control plane and the apps observed, so breaking B2 as
// well changes the story. Ctrl-C at any moment leaves no process and no file behind.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { remora, REMORA } from "./support/processes.ts";

const ADDR = String.raw`127\.0\.0\.1:\d+`;
const PAYMENTS = "spiffe://cluster.local/ns/default/sa/payments";
const ORDERS = "spiffe://cluster.local/ns/default/sa/orders";

/** The data directory the demo printed (its temporary directory is the parent). */
function dataDirOf(stdout: string): string {
  const m = /data directory (\S+)\/control /.exec(stdout);
  assert.ok(m, `no data directory in:\n${stdout}`);
  return m[1]!;
}

/** The inbound address the control plane reported for a proxy (GET /v1/proxies table). */
function inboundOf(stdout: string, proxy: string): string {
  const m = new RegExp(`^\\s+${proxy}\\s+spiffe://\\S+\\s+(${ADDR})\\s`, "m").exec(stdout);
  assert.ok(m, `no ${proxy} row in:\n${stdout}`);
  return m[1]!;
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Processes whose command line names `text` (the demo's temporary directory is in every sidecar's --ca). */
function processesNaming(text: string): string[] {
  const r = spawnSync("pgrep", ["-af", text], { encoding: "utf8" });
  return r.stdout.split("\n").filter((l) => l.trim() !== "" && !l.includes("pgrep"));
}

test("remora demo narrates the reference scenario from observed events and exits 0", async () => {
  const r = await remora(["demo", "--requests", "8"], 90_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const out = r.stdout;
  const b1 = esc(inboundOf(out, "payments-b1"));
  const b2 = esc(inboundOf(out, "payments-b2"));
  assert.notEqual(b1, b2);

  // The plain call and what sidecar A did, with the addresses the control plane registered.
  assert.match(out, /orders app: POST http:\/\/payments\/charge/);
  assert.match(out, new RegExp(`resolve "payments" -> \\[B1 \\(${b1}\\), B2 \\(${b2}\\)\\]`));
  assert.match(out, new RegExp(`attempt 1: pick B1 \\(${b1}\\) \\(round robin\\)`));
  assert.match(out, new RegExp(`sidecar B1: POST /charge from ${esc(ORDERS)} \\(mTLS, certificate verified\\) -> app ${ADDR} -> 503`));
  assert.match(out, /payments B1 app: reset 1 connection\(s\) during this call/);
  assert.match(out, new RegExp(`attempt 1 to B1 \\(${b1}\\) failed .*: status 503 \\(endpoint answered 503: its app failed \\(reset\\)\\)`));
  assert.match(out, /retry_policy fires/);
  assert.match(out, new RegExp(`mTLS handshake with B2 \\(${b2}\\) OK in [\\d.]+ ms; peer certificate verified: ${esc(PAYMENTS)}`));
  assert.match(out, /orders app: got 200 in [\d.]+ ms from payments B2; that app saw the caller as By=.*;URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
  assert.match(out, new RegExp(`outlier detection ejects B1 \\(${b1}\\) \\(consecutive_5xx\\)`));
  assert.match(out, new RegExp(`B1 \\(${b1}\\) returns to the pool`));

  // The live change went through the control plane and was ACKed; it changed what the app saw.
  assert.match(out, /GET \/v1\/proxies: orders-a ACK for version \d+/);
  assert.match(out, /pids unchanged/);
  assert.match(out, /seed policy, B1 flapping +\d+ +100\.0%/);
  assert.match(out, /num_retries: 0 +\d+ +(?!100\.0%)\d+\.\d%/);

  // The trace of the retried request, from the spans the sidecars exported.
  assert.match(out, /^trace [0-9a-f]{32} \(the first request that was retried, 2 attempt\(s\)/m);
  assert.match(out, /orders sidecar: outbound POST payments\/charge -> 200/);
  assert.match(out, new RegExp(`├─ orders sidecar: attempt 1 to B1 \\(${b1}\\) -> 503`));
  assert.match(out, new RegExp(`└─ orders sidecar: attempt 2 to B2 \\(${b2}\\) -> 200 ✓, peer ${esc(PAYMENTS)}`));
  assert.match(out, new RegExp(`└─ payments sidecar: inbound POST /charge to B2's app \\(${ADDR}\\) -> 200 ✓, caller ${esc(ORDERS)} over mTLS`));

  // Everything it started is gone.
  assert.match(out, /cleaned up/);
  const dir = dataDirOf(out);
  assert.equal(existsSync(dir), false, `${dir} was left behind`);
  assert.deepEqual(processesNaming(dir), []);
});

test("with B2 broken too, the narration reports the failures it saw", async () => {
  const r = await remora(["demo", "--requests", "6", "--flapping", "B1,B2"], 90_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const first = r.stdout.slice(r.stdout.indexOf("1. orders app"), r.stdout.indexOf("2. "));
  assert.match(first, /sidecar B2: POST \/charge from .* -> 503/);
  assert.match(first, /attempt 2 to B2 .* failed .*: status 503/);
  assert.match(first, /orders app: got 503/);
  assert.doesNotMatch(first, /orders app: got 200/);
  assert.doesNotMatch(first, /200 from B2/);
  assert.match(r.stdout, /seed policy, B1\+B2 flapping +\d+ +(?!100\.0%)\d+\.\d%/);
  assert.match(r.stdout, /orders sidecar: outbound POST payments\/charge -> 503 ✗, 3 attempt\(s\)/);
});

test("--json prints the event log, the summary and the trace as JSON lines", async () => {
  const r = await remora(["demo", "--requests", "4", "--json"], 90_000);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown> & { type: string });
  const events = lines.filter((l) => l.type === "event") as unknown as { sidecar: string; event: { type: string; service: string; time: string } }[];
  const sources = new Set(events.map((e) => `${e.sidecar}:${e.event.service}`));
  assert.deepEqual([...sources].sort(), ["B1:payments", "B2:payments", "orders:orders"]);
  assert.ok(events.some((e) => e.sidecar === "orders" && e.event.type === "eject"));
  assert.ok(events.some((e) => e.sidecar === "B2" && e.event.type === "request"));
  assert.ok(lines.some((l) => l.type === "say" && /outlier detection ejects B1/.test(String(l.text))));
  const summary = lines.find((l) => l.type === "summary") as { phases: { phase: string; requests: number; success: number }[] } | undefined;
  assert.equal(summary?.phases.length, 3);
  assert.equal(summary?.phases[0]?.success, 1);
  const trace = lines.find((l) => l.type === "trace") as { spans: { kind: number; service: string }[] } | undefined;
  assert.ok(trace && trace.spans.length >= 4);
  assert.ok(trace.spans.some((s) => s.kind === 2 && s.service === "payments"));
  assert.ok(trace.spans.some((s) => s.kind === 3 && s.service === "orders"));
});

test("Ctrl-C mid-run stops every process the demo started and removes its directory", async () => {
  const child = spawn(process.execPath, [REMORA, "demo", "--requests", "50"], { stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (c) => (stdout += c));
  child.stderr!.on("data", (c) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: string | null }>((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
  // Wait until the sidecars run and traffic flows, then interrupt.
  const started = Date.now();
  while (!/call {1,2}\d+:/.test(stdout) && Date.now() - started < 60_000 && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  assert.match(stdout, /call {1,2}\d+:/, stderr);
  const dir = dataDirOf(stdout);
  assert.equal(processesNaming(dir).length, 3, "three sidecars run while the demo does");
  child.kill("SIGINT");
  const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const { code, signal } = await exited;
  clearTimeout(killer);
  // Deno's node:child_process reports a child it sent a signal to as killed by that signal,
  // whatever status the child exited with; node and bun report the real status.
  if ("Deno" in globalThis) assert.ok(code === 130 || signal === "SIGINT", `exit ${code} ${signal}: ${stderr}`);
  else assert.equal(code, 130, stderr);
  assert.match(stderr, /stopped; no process or file of the demo is left/);
  assert.deepEqual(processesNaming(dir), []);
  assert.equal(existsSync(dir), false);
});

test("--pods without root exits 2 with one sentence saying why (the pods themselves: tests/e2e/demo-pods.test.ts)", () => {
  // As root here, drop to nobody for the check; pods need root, the e2e tier runs them.
  const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
  const r = spawnSync(process.execPath, [REMORA, "demo", "--pods"], { encoding: "utf8", timeout: 30_000, ...asUser });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^remora demo --pods cannot run here: network-namespace pods need root .*; run it as root, or run `remora demo` without --pods/);
});
