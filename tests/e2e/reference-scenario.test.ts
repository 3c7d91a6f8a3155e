// The reference scenario between network-namespace pods, apps unmodified: in pod orders,
// plain `curl -X POST http://payments/charge` (a hosts entry names payments' VIP, iptables
// hands the connection to the sidecar) gets 200 from B2 while B1 resets connections; B1 is
// ejected and sees nothing for the ejection time. A pod without a sidecar is refused by a
// STRICT pod and served (counted as plaintext) by a PERMISSIVE one; a capture on the bridge
// holds only TLS between pods. Teardown leaves nothing behind.

import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmod, copyFile, readFile, rm, writeFile } from "node:fs/promises";
import { spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { alive, APP_UID, killGroup, NODE, PodNetwork, podsUnavailable, PROXY_UID, REMORA, runDir, sweepStale, type Exec, type Pod } from "./support/pods.ts";
import { podSteps, until } from "./support/steps.ts";
import { contains, readTcpFlows, walkTlsRecords } from "./support/pcap.ts";

const PAYMENTS_APP = fileURLToPath(new URL("./apps/payments.ts", import.meta.url));
const SEED_POLICY = fileURLToPath(new URL("../../policies/payments.yaml", import.meta.url));
/** The seed policy's 30 s, shortened so the test waits out a whole ejection in reasonable time. */
const EJECTION_MS = 10_000;
const BODY = "card=4242-4242-secret-body";
const INTRUDER_BODY = "intruder-plaintext-body";
const CONTROL_PORT = 15010;

const skip = podsUnavailable();
if (skip) console.error(`\n*** SKIPPING the e2e pod tests: ${skip} ***\n`);

let net: PodNetwork | undefined;
let dir = "";
let controlUrl = "";
let pcap = "";
let tcpdump: ChildProcess | undefined;
const started: ChildProcess[] = [];
const logs = new Map<string, string[]>();
let failed = false;
let services: { service: string; namespace: string; vip: string; endpoints: number }[] = [];

function need(t: TestContext): PodNetwork | undefined {
  if (skip) {
    console.error(`*** skipped: ${skip} ***`);
    t.skip(skip);
    return undefined;
  }
  assert.ok(net, "the pod network was not built (see the before hook's error)");
  return net;
}

function pod(name: string): Pod {
  return net!.pod(name);
}

const steps = podSteps({ net: () => net!, logs, started, controlPod: () => pod("cp"), controlUrl: () => controlUrl, dataDir: () => join(dir, "cp") });
const { remora, admin } = steps;
const startLong = (label: string, p: Pod | undefined, uid: number | undefined, cmd: string, args: string[], ready: (line: string) => boolean, env: Record<string, string> = {}) =>
  steps.startLong({ label, pod: p, uid, cmd, args, ready, env });



async function startApp(p: Pod, replica: string, mode: "ok" | "reset"): Promise<void> {
  await startLong(`app ${replica}`, p, APP_UID, NODE, [PAYMENTS_APP], (l) => l.startsWith("listening "), { REPLICA: replica, PORT: "8080", MODE: mode });
}

/** Requests the replica's app has logged so far. */
function hits(replica: string): number {
  return (logs.get(`app ${replica}`) ?? []).filter((l) => l.startsWith("request ")).length;
}

/** A test whose failure makes the after hook print the processes' last log lines. */
function scenario(name: string, fn: (t: TestContext) => Promise<void> | void): void {
  test(name, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

async function startSidecar(p: Pod, service: string, mode: "STRICT" | "PERMISSIVE", withApp: boolean, extra: string[] = []): Promise<void> {
  const init = await net!.exec(p, {}, NODE, [REMORA, "init", "--proxy-uid", String(PROXY_UID), "--inbound-ports", withApp ? "8080" : ""]);
  assert.equal(init.code, 0, `remora init in ${p.name}: ${init.stderr}`);
  const token = (await remora(["token", "--service", service])).stdout.trim();
  const args = ["proxy", "--control", `https://${pod("cp").ip}:${CONTROL_PORT}`, "--ca", join(dir, "root.pem"), "--service", service, "--proxy-id", p.name];
  args.push("--outbound", "127.0.0.1:15001", "--admin", "127.0.0.1:15000", "--mode", mode);
  if (withApp) args.push("--app", "127.0.0.1:8080", "--inbound", "0.0.0.0:15006", "--advertise", `${p.ip}:15006`);
  args.push(...extra);
  await startLong(`sidecar ${p.name}`, p, PROXY_UID, NODE, [REMORA, ...args], (l) => l.includes('"msg":"sidecar ready"'), { REMORA_TOKEN: token });
}

/** The app's view: curl as the app's uid in the pod, no proxy flag, no TLS options. */
function curl(p: Pod, url: string, extra: string[] = []): Promise<Exec> {
  return net!.exec(p, { uid: APP_UID }, "curl", ["-sS", "--max-time", "10", "-w", "\n%{http_code}", ...extra, url], 15_000);
}

function reply(r: Exec): { status: number; body: string } {
  const i = r.stdout.lastIndexOf("\n");
  return { status: Number(r.stdout.slice(i + 1)), body: r.stdout.slice(0, i) };
}


function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}


before(async () => {
  if (skip) return;
  failed = true; // until the pods are up
  const stale = sweepStale();
  if (stale.length > 0) console.error(`removed namespaces left by an earlier run: ${stale.join(", ")}`);
  dir = runDir();
  net = new PodNetwork();
  net.addPod("cp", "10.250.0.2");
  net.addPod("orders", "10.250.0.10");
  net.addPod("pay-b1", "10.250.0.11");
  net.addPod("pay-b2", "10.250.0.12");
  net.addPod("ledger", "10.250.0.13");
  // A pod with no sidecar and no rules: the plaintext client STRICT must refuse.
  net.addPod("intruder", "10.250.0.20");

  pcap = join(dir, "bridge.pcap");
  tcpdump = await startLong("tcpdump", undefined, undefined, "tcpdump", ["-i", "br0", "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root", "-w", pcap, "tcp"], (l) => l.includes("listening on"));

  controlUrl = `https://${pod("cp").ip}:${CONTROL_PORT}`;
  await startLong("control", pod("cp"), undefined, NODE, [REMORA, "control", "--data", join(dir, "cp"), "--listen", `${pod("cp").ip}:${CONTROL_PORT}`], (l) => l.includes('"msg":"control plane ready"'));
  await copyFile(join(dir, "cp", "root.pem"), join(dir, "root.pem"));
  await chmod(join(dir, "root.pem"), 0o644);

  const policy = (await readFile(SEED_POLICY, "utf8")).replace(/base_ejection_time: 30s/, `base_ejection_time: ${EJECTION_MS / 1000}s`);
  assert.match(policy, /base_ejection_time: 10s/);
  await writeFile(join(dir, "payments.yaml"), policy);
  await remora(["apply", "-f", join(dir, "payments.yaml")]);

  await startApp(pod("pay-b1"), "B1", "reset");
  await startApp(pod("pay-b2"), "B2", "ok");
  await startApp(pod("ledger"), "ledger", "ok");
  await startSidecar(pod("pay-b1"), "payments", "STRICT", true);
  await startSidecar(pod("pay-b2"), "payments", "STRICT", true);
  await startSidecar(pod("ledger"), "ledger", "PERMISSIVE", true);
  // On-demand config: orders declares payments, so its config (and payments' VIP) is held
  // before the first call; a call by VIP alone is not discovered.
  await startSidecar(pod("orders"), "orders", "STRICT", false, ["--destinations", "payments"]);

  // Both replicas reach the caller's config through the registry.
  await until("orders sees two payments endpoints", 30_000, async () => {
    const c = JSON.parse(await admin(pod("orders"), "/config")) as { endpoints: Record<string, unknown[]> };
    return (c.endpoints.payments?.length ?? 0) === 2 ? true : undefined;
  });
  services = JSON.parse((await remora(["get", "services", "--json"])).stdout) as typeof services;
  net.writeHosts(pod("orders"), services.map((s) => [s.vip, s.service] as const));
  failed = false;
});

after(async () => {
  try {
    if (failed) for (const [label, lines] of logs) console.error(`--- ${label}\n${lines.slice(-15).join("\n")}`);
  } finally {
    net?.teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
  }
});

scenario("remora get services lists each service's VIP and endpoint count", async (t) => {
  if (!need(t)) return;
  const payments = services.find((s) => s.service === "payments");
  assert.ok(payments, JSON.stringify(services));
  assert.match(payments.vip, /^240\.240\.\d+\.\d+$/);
  assert.equal(payments.endpoints, 2);
  assert.deepEqual(services.map((s) => s.service).sort(), ["ledger", "orders", "payments"]);
  const table = (await remora(["get", "services"])).stdout;
  assert.match(table, /^SERVICE\s+NAMESPACE\s+VIP\s+ENDPOINTS$/m);
  assert.match(table, new RegExp(`^payments\\s+default\\s+${payments.vip.replaceAll(".", "\\.")}\\s+2$`, "m"));
});

scenario("curl in orders gets 200 from B2 while B1 resets; B1 is ejected and sees nothing for the ejection time", async (t) => {
  const n = need(t);
  if (!n) return;
  const orders = pod("orders");
  const call = async () => {
    const r = await curl(orders, "http://payments/charge", ["-X", "POST", "-d", BODY]);
    assert.equal(r.code, 0, `curl failed (a reset would show here): ${r.stderr}`);
    assert.deepEqual(reply(r), { status: 200, body: "B2" });
  };

  // consecutive_5xx: 5 — each call tries B1 at most once (retries prefer untried hosts).
  for (let i = 0; i < 30 && hits("B1") < 5; i++) await call();
  assert.equal(hits("B1"), 5, "B1's app saw five requests, each answered by a reset");
  const endpoints = JSON.parse(await admin(orders, "/endpoints")) as { destination: string; endpoints: { address: string; state: string }[] }[];
  const b1 = endpoints.find((d) => d.destination === "payments")?.endpoints.find((e) => e.address === `${pod("pay-b1").ip}:15006`);
  assert.equal(b1?.state, "ejected", JSON.stringify(endpoints));

  // For the whole ejection time every call lands on B2 and B1's app sees nothing.
  const ejectedAt = Date.now();
  let calls = 0;
  while (Date.now() - ejectedAt < EJECTION_MS - 500 && calls < 150) {
    await call();
    calls++;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(calls >= 5, `only ${calls} calls during the ejection`);
  assert.equal(hits("B1"), 5, "B1 got no request while ejected");
  const metrics = await admin(orders, "/metrics");
  assert.equal(metric(metrics, `remora_outlier_ejections_total{destination="payments",endpoint="${pod("pay-b1").ip}:15006"}`), 1);

  // The VIP itself works as a Host too, and the app cannot bypass its sidecar: a call
  // straight to B2's pod address lands in orders' own sidecar, which knows no such route.
  const payments = services.find((s) => s.service === "payments")!;
  assert.deepEqual(reply(await curl(orders, `http://${payments.vip}/charge`, ["-X", "POST", "-d", BODY])), { status: 200, body: "B2" });
  const hitsB2 = hits("B2");
  const direct = reply(await curl(orders, `http://${pod("pay-b2").ip}:8080/charge`, ["-X", "POST", "-d", BODY]));
  assert.equal(direct.status, 404);
  assert.match(direct.body, /^remora: no route for host/);
  assert.equal(hits("B2"), hitsB2);
});

scenario("plaintext from a pod without a sidecar: refused by STRICT B2, served and counted by PERMISSIVE ledger", async (t) => {
  const n = need(t);
  if (!n) return;
  const intruder = pod("intruder");
  const seenByB2 = hits("B2");
  const refused = await curl(intruder, `http://${pod("pay-b2").ip}:8080/charge`, ["-X", "POST", "-d", INTRUDER_BODY]);
  assert.notEqual(refused.code, 0, `STRICT served plaintext: ${refused.stdout}`);
  assert.equal(hits("B2"), seenByB2, "the plaintext request never reached B2's app");
  const b2 = await admin(pod("pay-b2"), "/metrics");
  assert.ok(metric(b2, 'remora_tls_handshakes_total{direction="inbound",result="refused"}') >= 1, b2);

  const served = await curl(intruder, `http://${pod("ledger").ip}:8080/charge`, ["-X", "POST", "-d", INTRUDER_BODY]);
  assert.equal(served.code, 0, served.stderr);
  assert.deepEqual(reply(served), { status: 200, body: "ledger" });
  const ledger = await admin(pod("ledger"), "/metrics");
  assert.equal(metric(ledger, 'remora_inbound_tls_requests_total{tls="plaintext"}'), 1);
  assert.equal(metric(ledger, 'remora_inbound_tls_requests_total{tls="mtls"}'), 0);
});

scenario("the capture on the pod network holds TLS records only between pods: no request line or body in clear", async (t) => {
  const n = need(t);
  if (!n || !tcpdump) return;
  // Immediate mode hands every packet to tcpdump as it comes; the pause lets it write the
  // last ones before SIGINT ends the capture.
  await new Promise((r) => setTimeout(r, 500));
  const exited = new Promise((r) => tcpdump!.once("exit", r));
  killGroup(tcpdump, "SIGINT");
  await exited;
  const flows = readTcpFlows(pcap).filter((f) => f.bytes.length > 0);
  const pods = new Set([...n.pods.values()].map((p) => p.ip));
  const intruder = pod("intruder").ip;
  const between = flows.filter((f) => pods.has(f.src) && pods.has(f.dst));
  const meshFlows = between.filter((f) => f.src !== intruder && f.dst !== intruder);
  const plain = between.filter((f) => f.src === intruder);

  // The capture is live: the deliberate plaintext from the intruder is there in clear.
  assert.ok(plain.some((f) => contains(f.bytes, "POST /charge") && contains(f.bytes, INTRUDER_BODY)), "the capture missed the intruder's plaintext");

  assert.ok(meshFlows.length > 0, "no traffic between pods was captured");
  for (const f of meshFlows) {
    const label = `${f.src}:${f.sport} -> ${f.dst}:${f.dport}`;
    for (const needle of ["POST /charge", "HTTP/1.1", BODY]) assert.ok(!contains(f.bytes, needle), `${label} carries "${needle}" in clear`);
    const walk = walkTlsRecords(f.bytes);
    assert.ok(walk.allTls, `${label} carries bytes that are not TLS records`);
  }
  const ordersToB2 = meshFlows.filter((f) => f.src === pod("orders").ip && f.dst === pod("pay-b2").ip && f.dport === 15006);
  assert.ok(ordersToB2.some((f) => walkTlsRecords(f.bytes).types.includes(0x17)), "orders -> B2 carried TLS application data");
});

scenario("teardown leaves no namespace, veth, iptables rule or process behind", (t) => {
  const n = need(t);
  if (!n) return;
  const pids = started.map((c) => c.pid).filter((p): p is number => p !== undefined);
  n.teardown();
  assert.deepEqual(n.leftovers(), []);
  const links = spawnSync("ip", ["-o", "link"], { encoding: "utf8" }).stdout;
  assert.ok(!/\bbr0\b|link-netns rmr-/.test(links), links);
  // A killed child stays a zombie until this process reaps it; alive() counts only live ones.
  for (const pid of pids) assert.equal(alive(pid), false, `process ${pid} survived teardown`);
  // iptables rules lived in the pods' namespaces, gone with them; the host's nat table has none.
  const save = spawnSync("iptables-save", ["-t", "nat"], { encoding: "utf8" }).stdout ?? "";
  assert.ok(!save.includes("REMORA_"), save);
});
