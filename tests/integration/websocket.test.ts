// WebSocket through two sidecars over mTLS (docs/protocols.md): an app's Upgrade request on
// the outbound listener is routed by Host like a request, tunnelled to the echo service's
// sidecar, which passes it to its app and relays the app's 101. One session carries a
// minute of messages; an idle session is closed by the idle timeout; authorization and
// routing failures get an HTTP answer with the reason.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { http, remora, startProxy, type Proxy } from "./support/processes.ts";
import { startWsEcho, wsConnect, type TestServer } from "./support/tunnel-apps.ts";

const ECHO_ID = "spiffe://cluster.local/ns/default/sa/echo";
let dir: string;
let echoApp: TestServer & { lastHeaders?: Record<string, unknown> };
let echo: Proxy;
let client: Proxy;
const cleanup: (() => Promise<void>)[] = [];

async function config(name: string, body: string): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, body);
  return path;
}

function sidecar(service: string, extra: string): string {
  return `identity: { cert: certs/${service}.pem, key: certs/${service}-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
${extra}`;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-ws-"));
  const r = await remora(["certs", "--out", join(dir, "certs"), "web", "echo"]);
  assert.equal(r.code, 0, r.stderr);
  echoApp = await startWsEcho();
  cleanup.push(() => echoApp.close());
  echo = await startProxy(await config("echo", sidecar("echo", `inbound: { listen: "127.0.0.1:0", app: "${echoApp.address}", mode: STRICT }`)));
  cleanup.push(() => echo.stop());
  client = await startProxy(await config("web", sidecar("web", `endpoints:
  echo:
    - { address: "${echo.inbound}", identity: ${ECHO_ID} }
protocols:
  websocket_idle_timeout: 3s`)));
  cleanup.push(() => client.stop());
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  if (dir) await rm(dir, { recursive: true, force: true });
});

function metric(text: string, series: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
}

describe("WebSocket through two sidecars", { timeout: 150_000 }, () => {
  test("the upgrade reaches the echo app with the caller's identity and its 101 comes back", async () => {
    const ws = await wsConnect(client.outbound, "echo", "/chat?room=1");
    assert.equal(ws.status, 101, ws.headers);
    assert.match(ws.headers, /sec-websocket-accept: /i);
    ws.send("hello");
    assert.equal(await ws.next(), "hello");
    assert.match(String(echoApp.lastHeaders?.["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/web$/);
    assert.equal(echoApp.lastHeaders?.host, "echo");
    ws.close();
    await ws.closed;
  });

  test("one session keeps a minute of messages, one a second, every one echoed", { timeout: 120_000 }, async () => {
    const sessions = echoApp.sessions;
    const ws = await wsConnect(client.outbound, "echo.default.svc.cluster.local", "/minute");
    assert.equal(ws.status, 101, ws.headers);
    for (let i = 1; i <= 60; i++) {
      const text = `message ${i} ${"x".repeat(i * 50)}`;
      ws.send(text);
      assert.equal(await ws.next(), text, `message ${i}`);
      await new Promise((r) => setTimeout(r, 1000));
    }
    assert.equal(echoApp.sessions, sessions + 1, "all 60 messages rode one session");
    ws.close();
    await ws.closed;
    const m = (await http(client.admin, "/metrics")).body;
    assert.ok(metric(m, 'remora_tcp_connections_total{direction="outbound",destination="echo",result="success"}') >= 2, m);
    assert.ok(metric(m, 'remora_tcp_bytes_total{direction="outbound",destination="echo",flow="sent"}') > 60 * 30 * 50 / 2);
  });

  test("an idle session is closed by websocket_idle_timeout (3 s here), with an access line", async () => {
    const ws = await wsConnect(client.outbound, "echo", "/idle");
    ws.send("once");
    assert.equal(await ws.next(), "once");
    const started = Date.now();
    await ws.closed;
    const waited = Date.now() - started;
    assert.ok(waited >= 2_500, `closed after ${waited} ms, before the idle timeout`);
    const deadline = Date.now() + 5_000;
    let line: Record<string, unknown> | undefined;
    while (!line && Date.now() < deadline) {
      line = client.logs.find((l) => l.msg === "access" && l.protocol === "websocket" && l.end === "idle");
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(line, "an access line with end: idle");
    assert.equal(line.destination, "echo");
    assert.equal(line.peer, ECHO_ID);
  });

  test("an upgrade to an unknown host is answered 404 naming it", async () => {
    const ws = await wsConnect(client.outbound, "nowhere", "/").catch((e: Error) => e);
    assert.ok(!(ws instanceof Error), String(ws));
    assert.equal(ws.status, 404);
    await ws.closed;
  });
});
