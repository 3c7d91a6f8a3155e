// Opaque TCP between network-namespace pods, apps unmodified: in pod orders, plain `psql
// postgres://…@postgres:5432` (a hosts entry names the postgres service's VIP; `remora init
// --opaque-ports 5432` leaves the connection unredirected and routes the VIP range locally,
// where orders' sidecar listens on VIP:5432) reaches PostgreSQL in pod pg through both
// sidecars over mTLS. A capture on the bridge holds only TLS between the two pods, while an
// intruder's deliberate plaintext psql shows up in clear (so the check can fail). The same
// capture covers gRPC: a grpc-js client in orders calls `echo:50051` over h2c (redirected to
// the sidecar, detected by its preface) and the echo server in pod echo answers through both
// sidecars, on one h2 mTLS connection between them.

import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmod, chown, copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { spawnSync, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { APP_UID, killGroup, NODE, PodNetwork, podsUnavailable, PROXY_UID, REMORA, runDir, sweepStale, type Exec, type Pod } from "./support/pods.ts";
import { podSteps, until } from "./support/steps.ts";
import { contains, readTcpFlows, walkTlsRecords } from "./support/pcap.ts";
import { findPostgresBin } from "../integration/support/postgres.ts";

const CONTROL_PORT = 15010;
const NOBODY = 65534;
const QUERY_MARK = "through-the-mesh-7f3a";
const GRPC_MARK = "grpc-through-the-mesh-91c2";
const GRPC_APP = fileURLToPath(new URL("./apps/grpc-echo.ts", import.meta.url));

const pgBin = findPostgresBin();
const skip = podsUnavailable() ?? (pgBin === undefined ? "no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)" : undefined)
  ?? (spawnSync("psql", ["--version"]).status === 0 ? undefined : "no psql on PATH");
if (skip) console.error(`\n*** SKIPPING the e2e protocol tests: ${skip} ***\n`);

let net: PodNetwork | undefined;
let dir = "";
let controlUrl = "";
let pcap = "";
let tcpdump: ChildProcess | undefined;
const logs = new Map<string, string[]>();
let failed = false;
let vip = "";
let echoVip = "";

function need(t: TestContext): PodNetwork | undefined {
  if (skip) {
    console.error(`*** skipped: ${skip} ***`);
    t.skip(skip);
    return undefined;
  }
  assert.ok(net, "the pod network was not built (see the before hook's error)");
  return net;
}

const pod = (name: string): Pod => net!.pod(name);

const steps = podSteps({ net: () => net!, logs, controlPod: () => pod("cp"), controlUrl: () => controlUrl, dataDir: () => join(dir, "cp") });
const { remora, admin } = steps;
const startLong = (label: string, p: Pod | undefined, uid: number | undefined, cmd: string, args: string[], ready: (line: string) => boolean, env: Record<string, string> = {}) =>
  steps.startLong({ label, pod: p, uid, cmd, args, ready, env });





async function sidecar(p: Pod, service: string, initArgs: string[], proxyArgs: string[]): Promise<void> {
  const init = await net!.exec(p, {}, NODE, [REMORA, "init", "--proxy-uid", String(PROXY_UID), ...initArgs]);
  assert.equal(init.code, 0, `remora init in ${p.name}: ${init.stderr}`);
  const token = (await remora(["token", "--service", service])).stdout.trim();
  const args = ["proxy", "--control", controlUrl, "--ca", join(dir, "root.pem"), "--service", service, "--proxy-id", p.name, "--outbound", "127.0.0.1:15001", "--admin", "127.0.0.1:15000", ...proxyArgs];
  await startLong(`sidecar ${p.name}`, p, PROXY_UID, NODE, [REMORA, ...args], (l) => l.includes('"msg":"sidecar ready"'), { REMORA_TOKEN: token });
}

/** psql as the app's uid in pod `p`: no TLS options, no proxy, the app's own view. */
function psql(p: Pod, url: string, sql: string): Promise<Exec> {
  return net!.exec(p, { uid: APP_UID }, "psql", [url, "-XAtc", sql], 20_000);
}

before(async () => {
  if (skip) return;
  failed = true;
  const stale = sweepStale();
  if (stale.length > 0) console.error(`removed namespaces left by an earlier run: ${stale.join(", ")}`);
  dir = runDir();
  net = new PodNetwork();
  net.addPod("cp", "10.250.0.2");
  net.addPod("orders", "10.250.0.10");
  net.addPod("pg", "10.250.0.11");
  net.addPod("echo", "10.250.0.12");
  net.addPod("intruder", "10.250.0.20");

  pcap = join(dir, "bridge.pcap");
  tcpdump = await startLong("tcpdump", undefined, undefined, "tcpdump", ["-i", "br0", "-n", "--immediate-mode", "-U", "-s", "0", "-Z", "root", "-w", pcap, "tcp"], (l) => l.includes("listening on"));

  controlUrl = `https://${pod("cp").ip}:${CONTROL_PORT}`;
  await startLong("control", pod("cp"), undefined, NODE, [REMORA, "control", "--data", join(dir, "cp"), "--listen", `${pod("cp").ip}:${CONTROL_PORT}`], (l) => l.includes('"msg":"control plane ready"'));
  await copyFile(join(dir, "cp", "root.pem"), join(dir, "root.pem"));
  await chmod(join(dir, "root.pem"), 0o644);

  // PostgreSQL in pod pg, as nobody (it refuses root), on loopback only: the sidecar is its door.
  const pgDir = join(dir, "pg");
  await mkdir(pgDir);
  await chown(pgDir, NOBODY, NOBODY);
  await writeFile(join(pgDir, "pw"), "remora-test\n");
  await chown(join(pgDir, "pw"), NOBODY, NOBODY);
  const initdb = spawnSync("setpriv", [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, "--clear-groups", join(pgBin!, "initdb"), "-D", join(pgDir, "data"), "-U", "remora", "--pwfile", join(pgDir, "pw"), "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale", "C"], { encoding: "utf8" });
  assert.equal(initdb.status, 0, initdb.stderr);
  await startLong("postgres", pod("pg"), NOBODY, join(pgBin!, "postgres"), ["-D", join(pgDir, "data"), "-p", "5432", "-h", "127.0.0.1", "-k", pgDir, "-c", "fsync=off"], (l) => l.includes("ready to accept connections"));

  await sidecar(pod("pg"), "postgres", ["--inbound-ports", "5432"], ["--app", "127.0.0.1:5432", "--inbound", "0.0.0.0:15006", "--advertise", `${pod("pg").ip}:15006`]);
  await startLong("app echo", pod("echo"), APP_UID, NODE, [GRPC_APP, "serve"], (l) => l.startsWith("listening "), { PORT: "50051", REPLICA: "E1" });
  await sidecar(pod("echo"), "echo", ["--inbound-ports", "50051"], ["--app", "127.0.0.1:50051", "--inbound", "0.0.0.0:15006", "--advertise", `${pod("echo").ip}:15006`]);
  await sidecar(pod("orders"), "orders", ["--inbound-ports", "", "--opaque-ports", "5432"], ["--opaque-ports", "5432", "--destinations", "postgres,echo"]);

  const services = JSON.parse((await remora(["get", "services", "--json"])).stdout) as { service: string; vip: string }[];
  vip = services.find((s) => s.service === "postgres")?.vip ?? "";
  assert.match(vip, /^240\.240\.\d+\.\d+$/, JSON.stringify(services));
  echoVip = services.find((s) => s.service === "echo")?.vip ?? "";
  assert.match(echoVip, /^240\.240\.\d+\.\d+$/, JSON.stringify(services));
  net.writeHosts(pod("orders"), [[vip, "postgres"], [echoVip, "echo"]]);
  await until("orders' sidecar listens on the postgres VIP:5432", 30_000, async () =>
    (logs.get("sidecar orders") ?? []).some((l) => l.includes('"msg":"tcp listener ready"') && l.includes(`${vip}:5432`)) ? true : undefined);
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

scenario("psql in orders reaches PostgreSQL in pod pg by name, as opaque TCP through both sidecars over mTLS", async (t) => {
  if (!need(t)) return;
  const r = await psql(pod("orders"), "postgres://remora:remora-test@postgres:5432/postgres", `select '${QUERY_MARK}-' || (6 * 7)`);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), `${QUERY_MARK}-42`);
  // The VIP itself works as well as the name.
  const again = await psql(pod("orders"), `postgres://remora:remora-test@${vip}:5432/postgres`, "select current_user");
  assert.equal(again.stdout.trim(), "remora", again.stderr);
  const m = await admin(pod("orders"), "/metrics");
  assert.match(m, /remora_tcp_connections_total\{direction="outbound",destination="postgres",result="success"\} [2-9]/);
  const inbound = await admin(pod("pg"), "/metrics");
  assert.match(inbound, /remora_tcp_connections_total\{direction="inbound",destination="app",result="success"\} [2-9]/);
});

scenario("a gRPC client in orders calls echo:50051 over h2c; the echo server in pod echo answers through both sidecars", async (t) => {
  if (!need(t)) return;
  const r = await net!.exec(pod("orders"), { uid: APP_UID }, NODE, [GRPC_APP, "call", "echo:50051", GRPC_MARK, "3"], 30_000);
  assert.equal(r.code, 0, r.stderr);
  const replies = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as { note: string; replica: string });
  assert.deepEqual(replies, [1, 2, 3].map(() => ({ note: GRPC_MARK, replica: "E1" })));
  const m = await admin(pod("orders"), "/metrics");
  assert.match(m, /remora_grpc_responses_total\{direction="outbound",destination="echo",grpc_status="0"\} 3\b/);
});

scenario("an intruder pod without a sidecar is refused by pg's STRICT inbound", async (t) => {
  if (!need(t)) return;
  const r = await psql(pod("intruder"), `postgres://remora:remora-test@${pod("pg").ip}:5432/postgres?sslmode=disable&connect_timeout=5`, "select 1");
  assert.notEqual(r.code, 0, `STRICT served plaintext psql: ${r.stdout}`);
});

scenario("the capture holds TLS records only between the pods with sidecars (psql and gRPC); the intruder's plaintext psql is in clear", async (t) => {
  const n = need(t);
  if (!n || !tcpdump) return;
  await new Promise((r) => setTimeout(r, 500));
  const exited = new Promise((r) => tcpdump!.once("exit", r));
  killGroup(tcpdump, "SIGINT");
  await exited;
  const flows = readTcpFlows(pcap).filter((f) => f.bytes.length > 0);
  const intruder = pod("intruder").ip;
  const meshIps = [pod("orders").ip, pod("pg").ip, pod("echo").ip];
  const mesh = flows.filter((f) => meshIps.includes(f.src) && meshIps.includes(f.dst));
  // The capture is live: the intruder's startup message (user, database) crossed in clear.
  assert.ok(flows.some((f) => f.src === intruder && contains(f.bytes, "user\0remora\0database\0postgres")), "the capture missed the intruder's plaintext psql");

  assert.ok(mesh.some((f) => f.src === pod("orders").ip && f.dport === 15006), "no orders -> pg traffic on the inbound port was captured");
  for (const f of mesh) {
    const label = `${f.src}:${f.sport} -> ${f.dst}:${f.dport}`;
    for (const needle of [QUERY_MARK, GRPC_MARK, "user\0remora", "SCRAM-SHA-256", "CONNECT 127.0.0.1", "PRI * HTTP/2.0", "application/grpc"]) assert.ok(!contains(f.bytes, needle), `${label} carries "${needle.replaceAll("\0", "\\0")}" in clear`);
    assert.ok(walkTlsRecords(f.bytes).allTls, `${label} carries bytes that are not TLS records`);
  }
  const toPg = mesh.filter((f) => f.src === pod("orders").ip && f.dst === pod("pg").ip);
  assert.ok(toPg.some((f) => walkTlsRecords(f.bytes).types.includes(0x17)), "orders -> pg carried TLS application data");
  const toEcho = mesh.filter((f) => f.src === pod("orders").ip && f.dst === pod("echo").ip);
  assert.ok(toEcho.some((f) => walkTlsRecords(f.bytes).types.includes(0x17)), "orders -> echo carried TLS application data");
});

scenario("remora init --remove takes the VIP local route away again", async (t) => {
  const n = need(t);
  if (!n) return;
  const before = await n.exec(pod("orders"), {}, "ip", ["route", "show", "table", "local"]);
  assert.match(before.stdout, /^local 240\.240\.0\.0\/16 dev lo/m);
  const r = await n.exec(pod("orders"), {}, NODE, [REMORA, "init", "--remove"]);
  assert.equal(r.code, 0, r.stderr);
  const afterRemove = await n.exec(pod("orders"), {}, "ip", ["route", "show", "table", "local"]);
  assert.doesNotMatch(afterRemove.stdout, /240\.240\.0\.0\/16/);
});
