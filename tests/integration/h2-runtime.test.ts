// The HTTP/2 pieces of the runtime adapters on loopback: h2c and ALPN-h2 sessions serving a
// web handler (h2-serve.ts), the multiplexed h2 upstream (h2-upstream.ts) through the
// runtime's createUpstream, trailers both ways, and the h2 error kinds.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import { trailersOf, attachTrailers } from "../../src/core/trailers.ts";
import { UpstreamError, type ConnectionInfo, type UpstreamErrorKind } from "../../src/core/upstream.ts";
import { loadRuntime, type LoadedRuntime } from "../../src/runtime/detect.ts";
import type { ConnInfo, Handler, MeshUpstream } from "../../src/runtime/types.ts";
import { acceptH2c, h2OverTls } from "../../src/runtime/node/h2-serve.ts";
import { createTlsAcceptor } from "../../src/runtime/node/tls-acceptor.ts";
import { connInfo } from "../../src/runtime/conn-info.ts";
import { mintTestPki, ORDERS_ID, PAYMENTS_ID, type TestPki } from "./helpers/certs.ts";
import { closedPort } from "./helpers/loopback.ts";
import { sanVerifier } from "./helpers/verifier.ts";

let pki: TestPki;
let runtime: LoadedRuntime;
before(async () => {
  pki = mintTestPki();
  runtime = await loadRuntime();
});
after(() => pki?.cleanup());

const H2 = { "remora-proto": "h2" };
const signal = () => AbortSignal.timeout(10_000);

interface Served {
  address: string;
  seen: { req: Request; info: ConnInfo }[];
  connections: number;
  close(): Promise<void>;
}

/** A loopback port that speaks only h2c (prior knowledge), every stream to `handler`; the client leaving closes the connection. */
async function h2cServer(handler: Handler): Promise<Served> {
  const seen: Served["seen"] = [];
  const sockets = new Set<net.Socket>();
  const served: Served = { address: "", seen, connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    served.connections++;
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    // As the listener's detector does: the first bytes (the preface) are read, then handed over as `head`.
    socket.once("data", (head: Buffer) => {
      socket.pause();
      acceptH2c(socket, head, async (req, info) => { seen.push({ req, info }); return handler(req, info); },
        connInfo(socket), "fallback.local");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  served.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  served.close = () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); });
  return served;
}

/** An mTLS port offering ALPN h2 through the listener's own acceptor, callers verified by SPIFFE ID. */
async function mtlsServer(handler: Handler): Promise<Served> {
  const seen: Served["seen"] = [];
  const served: Served = { address: "", seen, connections: 0, close: async () => {} };
  const verifier = sanVerifier();
  const acceptor = createTlsAcceptor(
    { mode: "STRICT", material: () => pki.material(pki.payments), verifyPeer: verifier.verify },
    // Not used: every caller here picks h2.
    new (await import("node:http")).Server(),
    () => undefined,
    () => false,
    h2OverTls(async (req, info) => { seen.push({ req, info }); return handler(req, info); }, () => served.address),
  );
  const sockets = new Set<net.Socket>();
  acceptor.server.on("secureConnection", () => served.connections++);
  acceptor.server.on("connection", (s: net.Socket) => { sockets.add(s); s.once("close", () => sockets.delete(s)); });
  await new Promise<void>((r) => acceptor.server.listen(0, "127.0.0.1", r));
  served.address = `127.0.0.1:${(acceptor.server.address() as net.AddressInfo).port}`;
  served.close = () => new Promise((r) => { for (const s of sockets) s.destroy(); acceptor.server.close(() => r()); });
  return served;
}

async function kindOf(promise: Promise<unknown>): Promise<UpstreamErrorKind> {
  const err = await promise.then(() => assert.fail("expected an UpstreamError"), (e: unknown) => e);
  assert.ok(err instanceof UpstreamError, `expected UpstreamError, got ${String(err)}`);
  return err.kind;
}

function upstream(): MeshUpstream {
  return runtime.createUpstream({ material: () => pki.material(pki.orders), verifyPeer: sanVerifier().verify });
}

describe("h2c", { timeout: 30_000 }, () => {
  test("a request marked remora-proto: h2 goes out as h2c; the handler sees the header, the wire does not carry it; trailers come back", async () => {
    const app = await h2cServer(async (req) => {
      const body = await req.text();
      const res = new Response(`echo:${body}`, { headers: { "content-type": "application/grpc", "x-head": "1" } });
      return attachTrailers(res, Promise.resolve(new Headers({ "grpc-status": "0", "x-custom": "bye" })));
    });
    const up = upstream();
    try {
      const res = await up.send(new Request("http://payments/pkg.Svc/Call", { method: "POST", body: "hello", headers: { ...H2, "content-type": "application/grpc" } }),
        { address: app.address }, { signal: signal(), tls: "DISABLE" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-head"), "1");
      assert.equal(await res.text(), "echo:hello");
      const t = await trailersOf(res);
      assert.equal(t?.get("grpc-status"), "0");
      assert.equal(t?.get("x-custom"), "bye");
      const got = app.seen[0]!.req;
      assert.equal(got.headers.get("remora-proto"), "h2", "the listener marks h2 requests");
      assert.equal(got.headers.get("te"), "trailers", "gRPC's te: trailers is restored");
      assert.equal(new URL(got.url).host, "payments");
      assert.equal(new URL(got.url).pathname, "/pkg.Svc/Call");
    } finally {
      up.close();
      await app.close();
    }
  });

  test("a trailers-only answer (grpc-status in the head) stays one HEADERS frame with no body and no trailers", async () => {
    const app = await h2cServer(async () => new Response(null, { headers: { "content-type": "application/grpc", "grpc-status": "14", "grpc-message": "down" } }));
    const up = upstream();
    try {
      const res = await up.send(new Request("http://payments/x", { method: "POST", body: "m", headers: { ...H2, "content-type": "application/grpc" } }),
        { address: app.address }, { signal: signal(), tls: "DISABLE" });
      assert.equal(res.headers.get("grpc-status"), "14");
      assert.equal(res.body, null);
      assert.equal(trailersOf(res), undefined);
    } finally {
      up.close();
      await app.close();
    }
  });

  test("streams both ways: the request body is read as it arrives, each answer chunk goes out before the body ends", async () => {
    const app = await h2cServer(async (req) => {
      const reader = req.body!.getReader();
      const out = new ReadableStream<Uint8Array>({
        async pull(c) {
          const { done, value } = await reader.read();
          if (done) c.close();
          else c.enqueue(new TextEncoder().encode(`pong:${new TextDecoder().decode(value)};`));
        },
      });
      return new Response(out);
    });
    const up = upstream();
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({ start: (c) => { push = c; } });
    try {
      const res = await up.send(new Request("http://payments/bidi", { method: "POST", body, headers: H2, duplex: "half" } as RequestInit),
        { address: app.address }, { signal: signal(), tls: "DISABLE" });
      const reader = res.body!.getReader();
      for (let i = 0; i < 5; i++) {
        push.enqueue(new TextEncoder().encode(`m${i}`));
        // Ping-pong: the next message is sent only after its answer came back.
        const { value } = await reader.read();
        assert.equal(new TextDecoder().decode(value), `pong:m${i};`);
      }
      push.close();
      assert.equal((await reader.read()).done, true);
    } finally {
      up.close();
      await app.close();
    }
  });

  test("requests without the mark still take HTTP/1.1", async () => {
    const app = await h2cServer(async () => new Response("h2"));
    const up = upstream();
    try {
      // An h2c-only port answers an HTTP/1.1 request with a GOAWAY: the attempt fails.
      await up.send(new Request("http://payments/"), { address: app.address }, { signal: signal(), tls: "DISABLE" }).then(
        async (r) => assert.notEqual(await r.text(), "h2"),
        (e: unknown) => assert.ok(e instanceof UpstreamError),
      );
      assert.equal(app.seen.length, 0);
    } finally {
      up.close();
      await app.close();
    }
  });

  test("REFUSED_STREAM is refused-stream; a GOAWAY before the head is reset; a closed port is connect-failure", async () => {
    const peer = await rawH2Server();
    const address = peer.address;
    const up = upstream();
    try {
      assert.equal(await kindOf(up.send(new Request("http://p/", { headers: H2 }), { address }, { signal: signal(), tls: "DISABLE" })), "refused-stream");
      peer.mode = "goaway";
      assert.equal(await kindOf(up.send(new Request("http://p/", { headers: H2 }), { address }, { signal: signal(), tls: "DISABLE" })), "reset");
      // The lost session left the pool: the next request opens a new connection.
      peer.mode = "refuse";
      assert.equal(await kindOf(up.send(new Request("http://p/", { headers: H2 }), { address }, { signal: signal(), tls: "DISABLE" })), "refused-stream");
      assert.equal(peer.connections, 2);
      const closed = `127.0.0.1:${await closedPort()}`;
      assert.equal(await kindOf(up.send(new Request("http://p/", { headers: H2 }), { address: closed }, { signal: signal(), tls: "DISABLE" })), "connect-failure");
    } finally {
      up.close();
      await peer.close();
    }
  });
});

/**
 * An h2c peer written frame by frame (RFC 9113 §4, §6), so the frames under test are
 * exactly these on every runtime: each HEADERS is answered with RST_STREAM(REFUSED_STREAM)
 * or with GOAWAY(INTERNAL_ERROR, last stream 0) and a close.
 */
async function rawH2Server(): Promise<{ address: string; mode: "refuse" | "goaway"; connections: number; close(): Promise<void> }> {
  const frame = (type: number, flags: number, stream: number, payload: number[]) =>
    Buffer.from([payload.length >> 16, (payload.length >> 8) & 255, payload.length & 255, type, flags, ...u32(stream), ...payload]);
  const u32 = (n: number) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const sockets = new Set<net.Socket>();
  const state = { address: "", mode: "refuse" as "refuse" | "goaway", connections: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.once("close", () => sockets.delete(socket));
    socket.write(frame(4, 0, 0, [])); // our SETTINGS
    let buffered = Buffer.alloc(0);
    let prefaceSeen = false;
    socket.on("data", (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      if (!prefaceSeen) {
        if (buffered.length < 24) return;
        buffered = buffered.subarray(24);
        prefaceSeen = true;
      }
      while (buffered.length >= 9) {
        const length = (buffered[0]! << 16) | (buffered[1]! << 8) | buffered[2]!;
        if (buffered.length < 9 + length) return;
        const type = buffered[3]!;
        const flags = buffered[4]!;
        const stream = buffered.readUInt32BE(5) & 0x7fffffff;
        buffered = buffered.subarray(9 + length);
        if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, [])); // SETTINGS ACK
        if (type !== 1) continue;
        if (state.mode === "refuse") socket.write(frame(3, 0, stream, u32(http2.constants.NGHTTP2_REFUSED_STREAM)));
        else socket.end(frame(7, 0, 0, [...u32(0), ...u32(http2.constants.NGHTTP2_INTERNAL_ERROR)]));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  state.address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  state.close = () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); });
  return state;
}

describe("h2 over mTLS", { timeout: 30_000 }, () => {
  test("50 concurrent requests share ONE verified connection; the caller's SPIFFE ID reaches the handler", async () => {
    const peer = await mtlsServer(async (req) => new Response(`hi ${new URL(req.url).pathname}`));
    const up = upstream();
    const infos: ConnectionInfo[] = [];
    try {
      const answers = await Promise.all(Array.from({ length: 50 }, (_, i) =>
        up.send(new Request(`http://payments/${i}`, { headers: H2 }), { address: peer.address, identity: PAYMENTS_ID },
          { signal: signal(), tls: "MUTUAL", onConnection: (c) => infos.push(c) }).then((r) => r.text())));
      assert.deepEqual(answers, Array.from({ length: 50 }, (_, i) => `hi /${i}`));
      assert.equal(peer.connections, 1, "one TLS handshake for the burst");
      assert.equal(infos.filter((c) => !c.reused).length, 1);
      assert.ok(infos.every((c) => c.peerIdentity === PAYMENTS_ID));
      assert.ok(peer.seen.every((s) => s.info.mtls && s.info.peerIdentity === ORDERS_ID));
      assert.ok(peer.seen.every((s) => new URL(s.req.url).protocol === "https:"));
      // Certificate reload: new streams go to a new session.
      up.reloadTls();
      assert.equal(await (await up.send(new Request("http://payments/after", { headers: H2 }), { address: peer.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" })).text(), "hi /after");
      assert.equal(peer.connections, 2);
    } finally {
      up.close();
      await peer.close();
    }
  });

  test("a peer presenting the wrong SPIFFE ID is a tls failure and no stream is sent", async () => {
    const peer = await mtlsServer(async () => new Response("should not be reached"));
    const up = upstream();
    try {
      const kind = await kindOf(up.send(new Request("http://payments/", { headers: H2 }), { address: peer.address, identity: ORDERS_ID }, { signal: signal(), tls: "MUTUAL" }));
      assert.equal(kind, "tls");
      assert.equal(peer.seen.length, 0);
    } finally {
      up.close();
      await peer.close();
    }
  });

  test("a peer without ALPN h2 is a connect-failure naming the cause", async () => {
    const server = tls.createServer({ ...pki.material(pki.payments), cert: pki.payments.certPem, key: pki.payments.keyPem, ca: pki.rootPem, requestCert: true }, (s) => s.end());
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const address = `127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const up = upstream();
    try {
      const err = await up.send(new Request("http://payments/", { headers: H2 }), { address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" }).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof UpstreamError);
      assert.equal(err.kind, "connect-failure");
      assert.match(err.message, /ALPN h2/);
    } finally {
      up.close();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
