// Opaque TCP through two sidecars over mTLS (docs/protocols.md): explicit TCP listeners
// (`protocols.tcp` in the config, `--tcp` on the command line) on the caller's side, a
// CONNECT to 127.0.0.1:<port> inside mTLS to the callee's inbound, which joins its local
// app. PostgreSQL queried with psql, an echo server with half-close, a server-first banner,
// connect-failure retry onto the healthy endpoint, an app's own CONNECT, and CONNECT to
// anything but the callee's app ports refused (no open relay).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import tls from "node:tls";
import { http, remora, startProxy, startProxyWith, type Proxy } from "./support/processes.ts";
import { freePort } from "./support/control-process.ts";
import { POSTGRES_SKIP, startPostgres, type Postgres } from "./support/postgres.ts";
import { closedPort } from "./helpers/loopback.ts";
import { startBannerServer, startTcpEcho, tcpExchange, type TestServer } from "./support/tunnel-apps.ts";

const DB_ID = "spiffe://cluster.local/ns/default/sa/db";
const BANNER = "220 toy.example ESMTP-ish ready\r\n";
let dir: string;
let echoApp: TestServer;
let bannerApp: TestServer;
let pg: Postgres | undefined;
let db: Proxy;
let orders: Proxy;
const ports = { pg: 0, echo: 0, banner: 0, refused: 0 };
let deadPort = 0;
const cleanup: (() => Promise<void>)[] = [];

if (POSTGRES_SKIP) console.error(`\n*** ${POSTGRES_SKIP}: the psql test skips ***\n`);

function sidecar(service: string, extra: string): string {
  return `identity: { cert: certs/${service}.pem, key: certs/${service}-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
${extra}`;
}

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-tcp-"));
  const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "db"]);
  assert.equal(r.code, 0, r.stderr);
  echoApp = await startTcpEcho();
  bannerApp = await startBannerServer(BANNER);
  cleanup.push(() => echoApp.close(), () => bannerApp.close());
  if (!POSTGRES_SKIP) {
    pg = await startPostgres();
    cleanup.push(() => pg!.destroy());
  }
  // The db sidecar fronts PostgreSQL (or, without it, the echo app) and lets peers CONNECT
  // to the echo and banner ports too; nothing else.
  const app = pg ? `127.0.0.1:${pg.port}` : echoApp.address;
  await writeFile(join(dir, "db.yaml"), sidecar("db", `inbound: { listen: "127.0.0.1:0", app: "${app}", mode: STRICT }
protocols:
  inbound_tcp_ports: [${echoApp.port}, ${bannerApp.port}]`));
  db = await startProxy(join(dir, "db.yaml"));
  cleanup.push(() => db.stop());

  deadPort = await closedPort();
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
  // The echo destination lists a dead endpoint first: round robin tries it first.
  await writeFile(join(dir, "orders.yaml"), sidecar("orders", `endpoints:
  postgres: [{ address: "${db.inbound}", identity: ${DB_ID} }]
  tcpecho:
    - { address: "127.0.0.1:${deadPort}", identity: ${DB_ID} }
    - { address: "${db.inbound}", identity: ${DB_ID} }
  banner: [{ address: "${db.inbound}", identity: ${DB_ID} }]
policies:
  - route:
      destination: tcpecho
      retry_policy: { retry_on: connect-failure, num_retries: 2 }
protocols:
  tcp:
    - { listen: "127.0.0.1:${ports.echo}", destination: "tcpecho:${echoApp.port}" }
    - { listen: "127.0.0.1:${ports.banner}", destination: "banner:${bannerApp.port}" }`));
  orders = await startProxyWith([
    "--config", join(dir, "orders.yaml"),
    "--tcp", `127.0.0.1:${ports.pg}=postgres:${pg?.port ?? echoApp.port}`,
    "--tcp", `127.0.0.1:${ports.refused}=banner:${deadPort}`,
  ]);
  cleanup.push(() => orders.stop());
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("opaque TCP through two sidecars", { timeout: 60_000 }, () => {
  test("psql queries PostgreSQL through the --tcp listener, mTLS between the sidecars", { skip: POSTGRES_SKIP || false }, async () => {
    const run = spawnSync("psql", [`postgres://remora:remora-test@127.0.0.1:${ports.pg}/postgres`, "-XAtc", "select 'through the mesh: ' || (6 * 7)"], { encoding: "utf8", timeout: 20_000 });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout.trim(), "through the mesh: 42");
    const m = (await http(orders.admin, "/metrics")).body;
    assert.ok(metric(m, 'remora_tcp_connections_total{direction="outbound",destination="postgres",result="success"}') >= 1, m);
    assert.ok(metric(m, 'remora_tcp_bytes_total{direction="outbound",destination="postgres",flow="received"}') > 0);
    const inbound = (await http(db.admin, "/metrics")).body;
    assert.ok(metric(inbound, 'remora_tcp_connections_total{direction="inbound",destination="app",result="success"}') >= 1, inbound);
    // The access line is written when the connection closes, a moment after psql exits.
    const deadline = Date.now() + 5_000;
    let line: Record<string, unknown> | undefined;
    while (!line && Date.now() < deadline) {
      line = db.logs.find((l) => l.msg === "access" && l.protocol === "connect" && l.direction === "inbound");
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(line?.peer, "spiffe://cluster.local/ns/default/sa/orders");
    assert.ok(Number(line?.bytes_sent) > 0 && Number(line?.bytes_received) > 0, JSON.stringify(line));
  });

  test("a server-first protocol: the banner arrives before the client says a word", async () => {
    const r = await tcpExchange(`127.0.0.1:${ports.banner}`, { until: (t) => t.includes("\r\n") });
    assert.equal(r.text, BANNER);
    const two = await tcpExchange(`127.0.0.1:${ports.banner}`, { send: "helo remora\r\n", until: (t) => t.includes("HELO REMORA") });
    assert.equal(two.text, `${BANNER}HELO REMORA\r\n`);
  });

  test("bytes cross both ways intact, and a half-close is passed on (the far side answers after our FIN)", async () => {
    const payload = Buffer.alloc(256 * 1024, "abcdefghij").toString();
    const r = await tcpExchange(`127.0.0.1:${ports.echo}`, { send: payload, end: true, timeoutMs: 20_000 });
    assert.equal(r.text.length, payload.length + 3);
    assert.ok(r.text === `${payload}bye`, "echo then bye, intact");
  });

  test("connect-failure retry: the dead endpoint is tried, then the healthy one serves", async () => {
    const before = orders.logs.length;
    const r = await tcpExchange(`127.0.0.1:${ports.echo}`, { send: "ping", until: (t) => t === "ping" });
    assert.equal(r.text, "ping");
    const m = (await http(orders.admin, "/metrics")).body;
    assert.ok(metric(m, `remora_upstream_cx_total{destination="tcpecho",endpoint="127.0.0.1:${deadPort}",result="connect_failure"}`) >= 1, m);
    assert.ok(metric(m, "remora_retries_total{destination=\"tcpecho\"}") >= 1, m);
    await new Promise((r) => setTimeout(r, 200));
    const lines = orders.logs.slice(before).filter((l) => l.msg === "access" && l.destination === "tcpecho");
    assert.ok(lines.some((l) => l.upstream === db.inbound), JSON.stringify(lines));
  });

  test("an app's own CONNECT on the outbound listener tunnels to the destination port", async () => {
    const [host, port] = [orders.outbound.slice(0, orders.outbound.lastIndexOf(":")), Number(orders.outbound.slice(orders.outbound.lastIndexOf(":") + 1))];
    const text = await new Promise<string>((resolve, reject) => {
      const s = net.connect({ host, port });
      let got = "";
      s.on("error", reject);
      s.on("data", (c) => {
        got += c.toString("latin1");
        if (got.includes("\r\n\r\n") && !got.endsWith("\r\n\r\n") ) s.end();
        if (got.endsWith("\r\n\r\n")) s.write("over connect");
      });
      s.on("close", () => resolve(got));
      s.write(`CONNECT tcpecho:${echoApp.port} HTTP/1.1\r\nHost: tcpecho:${echoApp.port}\r\n\r\n`);
    });
    assert.match(text, /^HTTP\/1\.1 200 Connection established\r\n\r\nover connect/);
  });

  test("CONNECT to a port the callee does not allow is refused with the reason; the client connection is closed", async () => {
    const r = await tcpExchange(`127.0.0.1:${ports.refused}`, { send: "hello?" });
    assert.equal(r.text, "");
    assert.equal(r.closedByPeer, true);
    await new Promise((ok) => setTimeout(ok, 200));
    const line = orders.logs.find((l) => l.msg === "access" && l.destination === "banner" && l.result === "refused");
    assert.match(String(line?.reason), new RegExp(`port ${deadPort} is refused`));
    const m = (await http(db.admin, "/metrics")).body;
    assert.ok(metric(m, 'remora_inbound_denied_total{reason="connect_target"}') >= 1, m);
  });

  test("no open relay: CONNECT over mTLS to another host is refused 403 naming the rule", async () => {
    const certs = join(dir, "certs");
    const [cert, key, ca] = await Promise.all(["orders.pem", "orders-key.pem", "root.pem"].map((f) => readFile(join(certs, f), "utf8")));
    const i = db.inbound!.lastIndexOf(":");
    const answer = await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: db.inbound!.slice(0, i), port: Number(db.inbound!.slice(i + 1)), cert, key, ca, checkServerIdentity: () => undefined });
      let got = "";
      s.on("error", reject);
      s.on("data", (c) => (got += c));
      s.on("close", () => resolve(got));
      s.once("secureConnect", () => s.write("CONNECT 192.0.2.7:443 HTTP/1.1\r\nHost: 192.0.2.7:443\r\n\r\n"));
    });
    assert.match(answer, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(answer, /CONNECT to 192\.0\.2\.7:443 is refused: this sidecar connects to its local app only/);
  });
});
