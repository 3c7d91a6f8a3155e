// `remora demo --pods` as a root user runs it: the reference scenario between network-namespace
// pods, narrated with the pods' addresses and the VIPs, retry and ejection included; it exits 0
// and leaves no namespace, hosts file, temp dir or process behind, also when Ctrl-C stops it.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { NODE, REMORA, namespaces, podsUnavailable } from "./support/pods.ts";

const skip = podsUnavailable();
if (skip) console.error(`\n*** SKIPPING the e2e demo --pods tests: ${skip} ***\n`);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `remora demo ARGS`; `interrupt` (if given) sends SIGINT once stdout matches it. */
function demo(args: string[], interrupt?: RegExp): Promise<Run> {
  return new Promise((ok, fail) => {
    const child = spawn(NODE, [REMORA, "demo", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let sent = false;
    child.stdout.on("data", (c) => {
      stdout += c;
      if (interrupt && !sent && interrupt.test(stdout)) {
        sent = true;
        child.kill("SIGINT");
      }
    });
    child.stderr.on("data", (c) => (stderr += c));
    const t = setTimeout(() => child.kill("SIGKILL"), 120_000);
    child.on("error", fail);
    child.on("close", (code) => (clearTimeout(t), ok({ code, stdout, stderr })));
  });
}

/** The run's name prefix (rmr-<pid>-), read from the namespaces the demo printed. */
function prefixOf(out: string): string {
  const m = /\b(rmr-\d+-)orders\b/.exec(out);
  assert.ok(m, `no pod namespace in:\n${out}`);
  return m[1]!;
}

function assertNothingLeft(prefix: string, out: string): void {
  assert.deepEqual(namespaces().filter((n) => n.startsWith(prefix)), [], "namespaces left behind");
  assert.equal(existsSync(`/etc/netns/${prefix}orders`), false, "the orders hosts file was left behind");
  const tmp = /data directory (\/tmp\/rmr-\d+-\w+)\/control/.exec(out)?.[1];
  if (tmp) assert.equal(existsSync(tmp), false, `${tmp} was left behind`);
  const ps = spawnSync("pgrep", ["-af", prefix], { encoding: "utf8" }).stdout.split("\n").filter((l) => l.trim() !== "" && !l.includes("pgrep"));
  assert.deepEqual(ps, [], "processes of the run are still there");
  const links = spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout;
  assert.ok(!/\bbr0\b|link-netns rmr-/.test(links), links);
  const nat = spawnSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }).stdout ?? "";
  assert.ok(!nat.includes("REMORA_"), nat);
}

test("remora demo --pods narrates the scenario between pods (pod IPs, VIPs, iptables redirect, retry, ejection) and exits 0", { skip }, async () => {
  const r = await demo(["--pods", "--requests", "8"]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  const out = r.stdout;
  assert.match(out, /^remora demo: the reference scenario in network-namespace pods/m);
  const vip = /VIPs from GET \/v1\/services: .*payments -> (240\.240\.\d+\.\d+)/.exec(out)?.[1];
  assert.ok(vip, `no payments VIP in:\n${out}`);
  assert.match(out, /^ {2}orders +rmr-\d+-orders +10\.250\.0\.10 /m);
  assert.match(out, /curl as uid 15100 in pod orders 10\.250\.0\.10; no proxy flag/);
  // Observed, not told: the nat rule's own counter, and the VIP curl dialled.
  assert.match(out, new RegExp(`REMORA_REDIRECT has sent [1-9]\\d* connection\\(s\\) to 127\\.0\\.0\\.1:15001 so far \\(iptables-save -c\\); curl itself dialled ${vip.replaceAll(".", "\\.")}:80`));
  assert.match(out, /resolve "payments" -> \[B1 \(10\.250\.0\.11:15006\), B2 \(10\.250\.0\.12:15006\)\]/);
  assert.match(out, /sidecar B1: POST \/charge from spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders \(mTLS, certificate verified\) -> app 127\.0\.0\.1:\d+ -> 503/);
  assert.match(out, /retry_policy fires/);
  assert.match(out, /mTLS handshake with B2 \(10\.250\.0\.12:15006\) OK in [\d.]+ ms; peer certificate verified: spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
  assert.match(out, /orders app: got 200 in [\d.]+ ms from payments B2/);
  assert.match(out, /outlier detection ejects B1 \(10\.250\.0\.11:15006\) \(consecutive_5xx\)/);
  assert.match(out, /B1 \(10\.250\.0\.11:15006\) returns to the pool/);
  assert.match(out, /GET \/v1\/proxies: orders-a ACK for version \d+/);
  assert.match(out, /seed policy, B1 flapping +\d+ +100\.0%/);
  assert.match(out, /└─ orders sidecar: attempt 2 to B2 \(10\.250\.0\.12:15006\) -> 200 ✓/);
  assert.match(out, /^pods removed: namespaces rmr-\d+-\{net,cp,orders,pay-b1,pay-b2\}/m);
  assertNothingLeft(prefixOf(out), out);
});

test("Ctrl-C during remora demo --pods stops everything: no namespace, file or process is left", { skip }, async () => {
  const r = await demo(["--pods", "--requests", "8"], /^2\. /m);
  assert.equal(r.code, 130, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stderr, /SIGINT: stopping everything the demo started/);
  assert.match(r.stdout, /^pods removed:/m);
  assertNothingLeft(prefixOf(r.stdout), r.stdout);
});
