// Listener limits on a real sidecar (in-process, this runtime's adapter): oversized headers,
// too many headers, big bodies, too many connections, slowloris clients and slow upstreams
// each get their own answer and metric, while everyone else keeps being served.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { loadRuntime, type LoadedRuntime } from "../../src/runtime/detect.ts";
import { startSidecar, type Sidecar } from "../../src/sidecar/sidecar.ts";
import { systemClock } from "../../src/core/system-clock.ts";
import { parsePolicy } from "../../src/core/policy/parse.ts";
import type { ListenerLimits } from "../../src/runtime/types.ts";
import { mintTestPki, type TestPki } from "./helpers/certs.ts";
import { rawRequest } from "./helpers/loopback.ts";

const LIMITS: Partial<ListenerLimits> = {
  maxRequestHeaderBytes: 4096,
  maxRequestHeaders: 20,
  maxRequestBodyBytes: 1000,
  maxConnections: 30,
  requestHeadersTimeoutMs: 800,
  requestBodyIdleTimeoutMs: 800,
};

let pki: TestPki;
let runtime: LoadedRuntime;
let sidecar: Sidecar;
let slowApp: http.Server;
const logs: { level: string; obj: Record<string, unknown>; msg?: string }[] = [];

before(async () => {
  pki = mintTestPki();
  runtime = await loadRuntime();
  // An app that answers after 3 s: the route timeout must answer first.
  slowApp = http.createServer((req, res) => void setTimeout(() => res.end("late"), 3000));
  await new Promise<void>((ok) => slowApp.listen(0, "127.0.0.1", ok));
  const slowAddress = `127.0.0.1:${(slowApp.address() as net.AddressInfo).port}`;
  const record = (level: string) => (obj: object, msg?: string) => void logs.push({ level, obj: obj as Record<string, unknown>, ...(msg ? { msg } : {}) });
  sidecar = await startSidecar(
    {
      identity: pki.material(pki.orders),
      outbound: { listen: "127.0.0.1:0" },
      admin: { listen: "127.0.0.1:0" },
      mesh: {
        policies: [parsePolicy({ route: { destination: "slow", timeout: "300ms", retry_policy: { num_retries: 0 }, tls: { mode: "DISABLE" } } }, "test")],
        endpoints: { slow: [{ address: slowAddress }] },
        version: "1",
      },
      drainMs: 0,
      limits: LIMITS,
    },
    { runtime, clock: systemClock, random: Math.random, log: { info: record("info"), warn: record("warn"), error: record("error") } },
  );
});

after(async () => {
  await sidecar?.close();
  slowApp?.closeAllConnections();
  await new Promise((ok) => slowApp?.close(ok));
  pki?.cleanup();
});

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

/** Writes `data` on a fresh connection; resolves with the first complete response (or all bytes until close). */
function exchange(port: number, data: string, limitMs = 10_000): Promise<string> {
  return new Promise((ok, fail) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(data));
    let got = "";
    const t = setTimeout(() => (socket.destroy(), fail(new Error(`no close within ${limitMs} ms; got ${JSON.stringify(got)}`))), limitMs);
    socket.on("data", (c) => {
      got += c;
      // Deno.serve keeps the connection open after "connection: close"; a whole response is enough.
      const end = got.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(got.slice(0, end));
      if (end >= 0 && length && got.length - end - 4 >= Number(length[1])) socket.destroy();
    });
    socket.on("error", () => {});
    socket.on("close", () => (clearTimeout(t), ok(got)));
  });
}

function rejected(listener: string, reason: string): number {
  const m = new RegExp(`remora_listener_rejected_total\\{listener="${listener}",reason="${reason}"\\} (\\d+)`).exec(sidecar.metrics.expose());
  return m ? Number(m[1]) : 0;
}

const live = () => rawRequest({ port: sidecar.admin.port, path: "/live" });

describe("listener limits", () => {
  test("headers over the size limit: 431 with a reason, counted per listener", async () => {
    const before = rejected("outbound", "header_size");
    const reply = await exchange(sidecar.outbound.port, `GET http://slow/ HTTP/1.1\r\nhost: slow\r\nx-big: ${"a".repeat(8000)}\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 431 /);
    assert.match(reply, /request headers exceed 4096 bytes/);
    assert.equal(rejected("outbound", "header_size"), before + 1);
    assert.equal((await live()).status, 200);
  });

  test("more header fields than allowed: 431", async () => {
    const headers = Array.from({ length: 30 }, (_, i) => `x-h${i}: v`).join("\r\n");
    const reply = await exchange(sidecar.admin.port, `GET /live HTTP/1.1\r\nhost: a\r\n${headers}\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 431 /);
    assert.match(reply, /more than 20 header fields/);
    assert.equal(rejected("admin", "header_count"), 1);
  });

  test("a Content-Length over the body limit: 413 before the body is read", async () => {
    const reply = await exchange(sidecar.admin.port, `POST /live HTTP/1.1\r\nhost: a\r\ncontent-length: 5000\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 413 /);
    assert.match(reply, /request body exceeds 1000 bytes/);
    assert.equal(rejected("admin", "body_size"), 1);
  });

  test("a chunked body passing the limit midway: 413 (listener level)", async (t) => {
    if (runtime.adapter === "deno") return t.skip("Deno.serve checks Content-Length only (docs/runtimes.md)");
    const listener = await runtime.serve({
      listen: "127.0.0.1:0",
      limits: LIMITS,
      handler: async (req) => new Response(`read ${(await req.arrayBuffer()).byteLength}`),
    });
    try {
      const chunk = "a".repeat(600);
      const body = `258\r\n${chunk}\r\n258\r\n${chunk}\r\n0\r\n\r\n`;
      const reply = await exchange(listener.port, `POST / HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n${body}`);
      assert.match(reply, /^HTTP\/1\.1 413 /);
      const ok = await exchange(listener.port, `POST / HTTP/1.1\r\nhost: a\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n258\r\n${chunk}\r\n0\r\n\r\n`);
      assert.match(ok, /read 600/);
    } finally {
      await listener.close(0);
    }
  });

  test("slowloris clients get 408 and are closed; normal requests keep succeeding meanwhile", async (t) => {
    // Held connections that never finish their headers.
    const slow = Array.from({ length: 10 }, () => exchange(sidecar.outbound.port, "GET http://slow/ HTTP/1.1\r\nhost: slow\r\nx-a: 1\r\n"));
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await live()).status);
    assert.deepEqual(new Set(statuses), new Set([200]));
    if (runtime.adapter === "deno") {
      // Deno.serve has no header timeout setting (docs/runtimes.md); the others answer 408.
      return t.skip("Deno.serve: slow clients are not cut");
    }
    const replies = await Promise.all(slow);
    for (const r of replies) assert.match(r, /^HTTP\/1\.1 408 [\s\S]*request headers not complete within 800 ms/);
    assert.equal(rejected("outbound", "headers_timeout"), 10);
    // Logged once for the one peer address, not ten times.
    const lines = logs.filter((l) => l.msg === "request rejected by a listener limit" && l.obj.reason === "headers_timeout");
    assert.equal(lines.length, 1);
    assert.match(String(lines[0]!.obj.remote), /^127\.0\.0\.1:\d+$/);
  });

  test("connections over the limit are refused and counted; held ones do not starve others once closed", async (t) => {
    if (runtime.adapter === "deno") return t.skip("Deno.serve does not expose connections (docs/runtimes.md)");
    const listener = await runtime.serve({ listen: "127.0.0.1:0", limits: { maxConnections: 3 }, handler: async () => new Response("ok") });
    let count = 0;
    const held: net.Socket[] = [];
    try {
      const l2 = await runtime.serve({
        listen: "127.0.0.1:0",
        limits: { maxConnections: 3 },
        onRejected: (reason) => void (reason === "connections" && count++),
        handler: async () => new Response("ok"),
      });
      try {
        for (let i = 0; i < 3; i++) {
          const s = net.connect(l2.port, "127.0.0.1");
          await new Promise((ok) => s.once("connect", ok));
          held.push(s);
        }
        await new Promise((ok) => setTimeout(ok, 100));
        const reply = await exchange(l2.port, "GET / HTTP/1.1\r\nhost: a\r\n\r\n");
        assert.match(reply, /^HTTP\/1\.1 503 [\s\S]*at its limit of 3 connections/);
        assert.equal(count, 1);
        for (const s of held) s.destroy();
        await new Promise((ok) => setTimeout(ok, 200));
        assert.equal((await rawRequest({ port: l2.port, path: "/" })).status, 200);
      } finally {
        await l2.close(0);
      }
    } finally {
      for (const s of held) s.destroy();
      await listener.close(0);
    }
  });

  test("a slow upstream: the route timeout answers 504", async () => {
    const r = await rawRequest({ port: sidecar.outbound.port, path: "http://slow/x", headers: { host: "slow" } });
    assert.equal(r.status, 504, r.body);
  });
});
