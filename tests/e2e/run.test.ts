// `remora run` as a job pod's entry point, between network-namespace pods: after `remora
// init`, `remora run --proxy-uid P --app-uid A … -- curl -s http://payments/charge` prints
// the payments app's answer and exits with curl's code (a failing curl: its non-zero code),
// and no sidecar process is left in the pod afterwards.

import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmod, copyFile, rm } from "node:fs/promises";
import { spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { APP_UID, killGroup, NODE, PodNetwork, podsUnavailable, PROXY_UID, REMORA, runDir, sweepStale, type Exec, type Pod } from "./support/pods.ts";
import { podSteps } from "./support/steps.ts";

const PAYMENTS_APP = fileURLToPath(new URL("./apps/payments.ts", import.meta.url));
const CONTROL_PORT = 15010;

const skip = podsUnavailable();
if (skip) console.error(`\n*** SKIPPING the e2e run tests: ${skip} ***\n`);

let net: PodNetwork | undefined;
let dir = "";
let controlUrl = "";
const started: ChildProcess[] = [];
const logs = new Map<string, string[]>();

function need(t: TestContext): PodNetwork | undefined {
  if (skip) {
    t.skip(skip);
    return undefined;
  }
  assert.ok(net, "the pod network was not built (see the before hook's error)");
  return net;
}

const pod = (name: string): Pod => net!.pod(name);

const steps = podSteps({ net: () => net!, logs, started, controlPod: () => pod("cp"), controlUrl: () => controlUrl, dataDir: () => join(dir, "cp") });
const { remora } = steps;
const startLong = (label: string, p: Pod | undefined, uid: number | undefined, cmd: string, args: string[], ready: (line: string) => boolean, env: Record<string, string> = {}) =>
  steps.startLong({ label, pod: p, uid, cmd, args, ready, env });



/** Processes still in the pod's namespace. */
function pidsIn(p: Pod): string[] {
  return (spawnSync("ip", ["netns", "pids", p.ns], { encoding: "utf8" }).stdout ?? "").split(/\s+/).filter((s) => /^\d+$/.test(s));
}

/** `remora run` in the job pod, as root (it drops to the uids itself), with the pod's rules applied. */
async function run(command: string[]): Promise<Exec> {
  const token = (await remora(["token", "--service", "job"])).stdout.trim();
  const args = ["run", "--proxy-uid", String(PROXY_UID), "--app-uid", String(APP_UID), "--control", controlUrl, "--ca", join(dir, "root.pem"), "--service", "job", "--on-demand"];
  args.push("--outbound", "127.0.0.1:15001", "--admin", "127.0.0.1:15000", "--", ...command);
  return net!.exec(pod("job"), { env: { REMORA_TOKEN: token } }, NODE, [REMORA, ...args], 60_000);
}

before(async () => {
  if (skip) return;
  const stale = sweepStale();
  if (stale.length > 0) console.error(`removed namespaces left by an earlier run: ${stale.join(", ")}`);
  dir = runDir();
  net = new PodNetwork();
  net.addPod("cp", "10.250.1.2");
  net.addPod("pay", "10.250.1.11");
  net.addPod("job", "10.250.1.20");
  controlUrl = `https://${pod("cp").ip}:${CONTROL_PORT}`;
  await startLong("control", pod("cp"), undefined, NODE, [REMORA, "control", "--data", join(dir, "cp"), "--listen", `${pod("cp").ip}:${CONTROL_PORT}`], (l) => l.includes('"msg":"control plane ready"'));
  await copyFile(join(dir, "cp", "root.pem"), join(dir, "root.pem"));
  await chmod(join(dir, "root.pem"), 0o644);

  await startLong("app payments", pod("pay"), APP_UID, NODE, [PAYMENTS_APP], (l) => l.startsWith("listening "), { REPLICA: "payments", PORT: "8080" });
  const init = await net.exec(pod("pay"), {}, NODE, [REMORA, "init", "--proxy-uid", String(PROXY_UID), "--inbound-ports", "8080"]);
  assert.equal(init.code, 0, init.stderr);
  const token = (await remora(["token", "--service", "payments"])).stdout.trim();
  const args = ["proxy", "--control", controlUrl, "--ca", join(dir, "root.pem"), "--service", "payments", "--proxy-id", "pay", "--app", "127.0.0.1:8080", "--inbound", "0.0.0.0:15006", "--advertise", `${pod("pay").ip}:15006`, "--outbound", "127.0.0.1:15001", "--admin", "127.0.0.1:15000"];
  await startLong("sidecar pay", pod("pay"), PROXY_UID, NODE, [REMORA, ...args], (l) => l.includes('"msg":"sidecar ready"'), { REMORA_TOKEN: token });

  const jobInit = await net.exec(pod("job"), {}, NODE, [REMORA, "init", "--proxy-uid", String(PROXY_UID), "--inbound-ports", ""]);
  assert.equal(jobInit.code, 0, jobInit.stderr);
  const services = JSON.parse((await remora(["get", "services", "--json"])).stdout) as { service: string; vip: string }[];
  assert.ok(services.some((s) => s.service === "payments"), JSON.stringify(services));
  net.writeHosts(pod("job"), services.map((s) => [s.vip, s.service] as const));
});

after(async () => {
  for (const c of started) killGroup(c);
  net?.teardown();
  if (net) assert.deepEqual(net.leftovers(), []);
  if (dir) await rm(dir, { recursive: true, force: true });
});

test("remora run -- curl -s http://payments/charge prints the answer and exits 0; the sidecar is gone", async (t) => {
  if (!need(t)) return;
  const r = await run(["curl", "-s", "http://payments/charge"]);
  assert.equal(r.code, 0, `remora run exited ${r.code}: ${r.stderr}`);
  // curl's GET reaches the payments app through both sidecars; the app's own answer comes back.
  assert.equal(r.stdout, "no GET /charge here\n", r.stderr);
  assert.deepEqual(pidsIn(pod("job")), [], "no process (sidecar or app) is left in the job pod");
});

test("a failing curl: remora run exits with curl's own non-zero code", async (t) => {
  if (!need(t)) return;
  // No hosts entry for the name: curl cannot resolve it and exits 6 (CURLE_COULDNT_RESOLVE_HOST).
  const r = await run(["curl", "-s", "http://nosuch-service/x"]);
  assert.equal(r.code, 6, `remora run exited ${r.code}: ${r.stderr}`);
  assert.deepEqual(pidsIn(pod("job")), [], "no process is left in the job pod");
});

test("POST through remora run gets the payments replica's answer", async (t) => {
  if (!need(t)) return;
  const r = await run(["curl", "-s", "-X", "POST", "http://payments/charge"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "payments");
});
