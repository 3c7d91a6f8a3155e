// The behaviour suite every runtime adapter passes, run against the adapter this runtime
// picks (REMORA_RUNTIME_ADAPTER=node forces the node adapter): listeners (plain, STRICT,
// PERMISSIVE), the mTLS upstream with connection reuse, error kinds, certificate reload,
// graceful close and the optional client certificate (clientCert "request").

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { isRemoraError } from "../../src/core/errors.ts";
import { isCancellingOnSignal, UpstreamError, type ConnectionInfo, type UpstreamErrorKind } from "../../src/core/upstream.ts";
import { detectRuntime, loadRuntime, type LoadedRuntime } from "../../src/runtime/detect.ts";
import type { ConnInfo, Handler, Listener, MeshUpstream, ServeOptions, TlsMaterial } from "../../src/runtime/types.ts";
import { mintTestPki, ORDERS_ID, OTHER_ID, PAYMENTS_ID, type TestPki } from "./helpers/certs.ts";
import { closedPort, deferred, rawRequest } from "./helpers/loopback.ts";
import { sanVerifier } from "./helpers/verifier.ts";

let pki: TestPki;
let runtime: LoadedRuntime;
before(async () => {
  pki = mintTestPki();
  runtime = await loadRuntime();
});
after(() => pki?.cleanup());

const LOOPBACK = "127.0.0.1:0";
const ok: Handler = async () => new Response("ok");

/** Runs `body` with listeners and upstreams that are always closed afterwards. */
async function withResources(body: (track: { listener: (o: ServeOptions) => Promise<Listener>; upstream: (m?: () => TlsMaterial) => MeshUpstream }) => Promise<void>) {
  const listeners: Listener[] = [];
  const upstreams: MeshUpstream[] = [];
  try {
    await body({
      listener: async (options) => {
        const listener = await runtime.serve(options);
        listeners.push(listener);
        return listener;
      },
      upstream: (material = () => pki.material(pki.orders)) => {
        const upstream = runtime.createUpstream({ material, verifyPeer: sanVerifier().verify });
        upstreams.push(upstream);
        return upstream;
      },
    });
  } finally {
    for (const u of upstreams) u.close();
    await Promise.all(listeners.map((l) => l.close(0)));
  }
}

function strict(handler: Handler, extra: Partial<NonNullable<ServeOptions["tls"]>> = {}): ServeOptions {
  return {
    listen: LOOPBACK,
    handler,
    tls: { mode: "STRICT", material: () => pki.material(pki.payments), verifyPeer: sanVerifier().verify, ...extra },
  };
}

async function rejectsWithKind(promise: Promise<unknown>, kind: UpstreamErrorKind): Promise<UpstreamError> {
  const err = await promise.then(() => assert.fail(`expected an UpstreamError of kind ${kind}`), (e: unknown) => e);
  assert.ok(err instanceof UpstreamError, `expected UpstreamError, got ${String(err)}`);
  assert.equal(err.kind, kind, err.message);
  return err;
}

const signal = () => AbortSignal.timeout(5_000);

test("the adapter is the runtime's own unless REMORA_RUNTIME_ADAPTER=node asks for the node one", () => {
  const forced = process.env.REMORA_RUNTIME_ADAPTER === "node";
  assert.equal(runtime.name, detectRuntime());
  assert.equal(runtime.adapter, forced ? "node" : detectRuntime());
  assert.match(runtime.version, /^\d+\.\d+\.\d+/);
});

describe("plain listener", { timeout: 20_000 }, () => {
  test("round trip streams both bodies and keeps headers, including several set-cookie", async () => {
    await withResources(async ({ listener }) => {
      const firstPartRead = deferred();
      const firstChunkSeen = deferred();
      let seen: { req: Request; info: ConnInfo } | undefined;
      const l = await listener({
        listen: LOOPBACK,
        handler: async (req, info) => {
          seen = { req, info };
          const reader = req.body!.getReader();
          const decoder = new TextDecoder();
          let received = decoder.decode((await reader.read()).value, { stream: true });
          firstPartRead.resolve();
          for (let r = await reader.read(); !r.done; r = await reader.read()) received += decoder.decode(r.value, { stream: true });
          const encoder = new TextEncoder();
          const body = new ReadableStream<Uint8Array>({
            start(c) { c.enqueue(encoder.encode("first;")); },
            async pull(c) {
              await firstChunkSeen.promise; // only produced after the client saw "first;"
              c.enqueue(encoder.encode(`echo=${received}`));
              c.close();
            },
          });
          const headers = new Headers({ "x-reply": "yes", "content-type": "text/plain" });
          headers.append("set-cookie", "a=1; Path=/");
          headers.append("set-cookie", "b=2; Path=/");
          return new Response(body, { status: 201, headers });
        },
      });

      const result = await new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port: l.port, method: "POST", path: "/upload?x=1", agent: false, headers: { "x-custom": "v1", host: "orders.local" } }, (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            body += chunk;
            if (body.startsWith("first;")) firstChunkSeen.resolve();
          });
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        });
        req.on("error", reject);
        req.write("part1,");
        // The handler reads part1 before part2 exists: the request body streams.
        firstPartRead.promise.then(() => req.end("part2"), reject);
      });

      assert.equal(result.status, 201);
      assert.equal(result.body, "first;echo=part1,part2");
      assert.equal(result.headers["x-reply"], "yes");
      assert.deepEqual(result.headers["set-cookie"], ["a=1; Path=/", "b=2; Path=/"]);
      assert.equal(seen?.req.url, "http://orders.local/upload?x=1");
      assert.equal(seen?.req.method, "POST");
      assert.equal(seen?.req.headers.get("x-custom"), "v1");
      assert.equal(seen?.info.mtls, false);
      assert.equal(seen?.info.peerIdentity, undefined);
      assert.equal(seen?.info.remoteAddress, "127.0.0.1");
      assert.ok(seen!.info.remotePort > 0);
      assert.equal(seen!.info.remote, `127.0.0.1:${seen!.info.remotePort}`);
    });
  });

  test("absolute-form target (curl -x) becomes the request URL", async () => {
    await withResources(async ({ listener }) => {
      let url = "";
      const l = await listener({ listen: LOOPBACK, handler: async (req) => { url = req.url; return new Response("ok"); } });
      const res = await rawRequest({ port: l.port, path: "http://payments/charge?id=7", headers: { host: "payments" } });
      assert.equal(res.status, 200);
      assert.equal(url, "http://payments/charge?id=7");
    });
  });

  test("an absolute-form target wins over a different Host header (RFC 9112 §3.2.2)", async () => {
    await withResources(async ({ listener }) => {
      let url = "";
      const l = await listener({ listen: LOOPBACK, handler: async (req) => { url = req.url; return new Response("ok"); } });
      const res = await rawRequest({ port: l.port, path: "http://payments/charge", headers: { host: `127.0.0.1:${l.port}` } });
      assert.equal(res.status, 200);
      assert.equal(url, "http://payments/charge");
    });
  });

  test("a handler that throws answers 500 and the listener keeps serving", async () => {
    await withResources(async ({ listener }) => {
      let calls = 0;
      const l = await listener({
        listen: LOOPBACK,
        handler: async () => {
          if (++calls === 1) throw new Error("boom");
          return new Response("fine");
        },
      });
      assert.equal((await rawRequest({ port: l.port, path: "/" })).status, 500);
      const second = await rawRequest({ port: l.port, path: "/" });
      assert.equal(second.status, 200);
      assert.equal(second.body, "fine");
    });
  });

  test("a handler that answers before its body arrived still gets the whole body, and the next request waits for it", async () => {
    // A proxy does this: the app answers once it has the head, while the sidecar is still
    // forwarding the body. Dropping the rest would leave the app short of what the head announced.
    await withResources(async ({ listener }) => {
      const bodies: Promise<string>[] = [];
      const l = await listener({
        listen: LOOPBACK,
        handler: async (req) => {
          const reader = req.body?.getReader();
          const first = reader ? reader.read() : Promise.resolve({ done: true, value: undefined });
          bodies.push((async () => {
            const decoder = new TextDecoder();
            let text = "";
            for (let next = await first; !next.done; next = await reader!.read()) text += decoder.decode(next.value, { stream: true });
            return text;
          })());
          return new Response(`answered ${req.method} ${new URL(req.url).pathname}`);
        },
      });
      const client = net.connect(l.port, "127.0.0.1");
      await new Promise((r) => client.once("connect", r));
      let got = "";
      client.on("data", (d) => (got += d));
      const waitFor = async (pattern: RegExp) => {
        for (let i = 0; i < 500 && !pattern.test(got); i++) await new Promise((r) => setTimeout(r, 10));
        assert.match(got, pattern);
      };
      client.write("POST /charge HTTP/1.1\r\nHost: payments\r\nContent-Length: 32\r\n\r\n");
      await waitFor(/answered POST \/charge/);
      if (runtime.adapter === "deno" && /connection: close/i.test(got)) {
        // Deno.serve (Deno's plain listener) closes such a connection instead of reading on
        // (docs/runtimes.md); the sidecar's plain listener buffers bodies first anyway.
        client.destroy();
        await bodies[0]?.catch(() => {}); // its body fails with the connection
        return;
      }
      client.write('{"amount":4200,"currency":"EUR"}');
      client.write("GET /next HTTP/1.1\r\nHost: payments\r\n\r\n");
      await waitFor(/answered GET \/next/);
      client.destroy();
      assert.equal(await bodies[0], '{"amount":4200,"currency":"EUR"}');
      assert.equal(bodies.length, 2);
    });
  });

  test("the request signal aborts when the client disconnects", async () => {
    await withResources(async ({ listener }) => {
      const aborted = deferred();
      const l = await listener({
        listen: LOOPBACK,
        handler: (req) => new Promise<Response>(() => {
          req.signal.addEventListener("abort", () => aborted.resolve());
          client.destroy();
        }),
      });
      const client = net.connect(l.port, "127.0.0.1", () => client.write("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
      client.on("error", () => {});
      await aborted.promise;
    });
  });

  test("listen errors name the address: EADDRINUSE", async () => {
    await withResources(async ({ listener }) => {
      const taken = await listener({ listen: LOOPBACK, handler: ok });
      const err = await runtime.serve({ listen: `127.0.0.1:${taken.port}`, handler: ok }).then(() => undefined, (e: unknown) => e);
      assert.ok(isRemoraError(err, "ERR_LISTEN"), String(err));
      assert.equal(err.message, `cannot listen on 127.0.0.1:${taken.port}: address already in use`);
    });
  });

  test("IPv6 [::1]:0 listens and reports its address", async () => {
    await withResources(async ({ listener }) => {
      const l = await listener({ listen: "[::1]:0", handler: ok });
      assert.ok(l.port > 0);
      assert.equal(l.address, `[::1]:${l.port}`);
      assert.equal((await rawRequest({ host: "::1", port: l.port, path: "/" })).body, "ok");
    });
  });

  test("close(grace) lets an in-flight request finish and refuses new connections", async () => {
    const started = deferred();
    const release = deferred();
    const l = await runtime.serve({
      listen: LOOPBACK,
      handler: async () => {
        started.resolve();
        await release.promise;
        return new Response("finished");
      },
    });
    const inflight = rawRequest({ port: l.port, path: "/" });
    await started.promise;
    let closed = false;
    const closing = l.close(10_000).then(() => { closed = true; });
    await assert.rejects(rawRequest({ port: l.port, path: "/" }), /ECONNREFUSED/);
    assert.equal(closed, false, "close() resolved while a request was in flight");
    release.resolve();
    const res = await inflight;
    assert.equal(res.body, "finished");
    assert.equal(res.headers.connection, "close");
    await closing;
    assert.equal(closed, true);
  });

  test("close(grace) cuts requests still running when the grace period ends", async () => {
    const started = deferred();
    const l = await runtime.serve({ listen: LOOPBACK, handler: async () => { started.resolve(); return await new Promise<Response>(() => {}); } });
    const inflight = rawRequest({ port: l.port, path: "/" }).then(() => "answered", (err: unknown) => err);
    await started.promise;
    await l.close(20);
    assert.ok(await inflight instanceof Error, "the cut request should fail");
  });
});

describe("mTLS listener and upstream", { timeout: 20_000 }, () => {
  test("round trip: both sides see the other's SPIFFE ID; Host and body pass, hop-by-hop headers do not", async () => {
    await withResources(async ({ listener, upstream }) => {
      let seen: { req: Request; info: ConnInfo; body: string } | undefined;
      const l = await listener(strict(async (req, info) => {
        seen = { req, info, body: await req.text() };
        return new Response("charged", { headers: { "x-from": "payments" } });
      }));
      const connections: ConnectionInfo[] = [];
      const res = await upstream().send(
        new Request("http://payments/charge?card=1", {
          method: "POST",
          body: "amount=5",
          headers: { "x-request-id": "r1", connection: "x-secret", "x-secret": "hop", "keep-alive": "timeout=5", te: "trailers" },
        }),
        { address: l.address, identity: PAYMENTS_ID },
        { signal: signal(), tls: "MUTUAL", onConnection: (c) => connections.push(c) },
      );
      assert.equal(res.status, 200);
      assert.equal(await res.text(), "charged");
      assert.equal(res.headers.get("x-from"), "payments");

      assert.equal(seen?.info.mtls, true);
      assert.equal(seen?.info.peerIdentity, ORDERS_ID);
      assert.equal(seen?.body, "amount=5");
      assert.equal(seen?.req.method, "POST");
      assert.equal(new URL(seen!.req.url).pathname + new URL(seen!.req.url).search, "/charge?card=1");
      assert.equal(seen?.req.headers.get("host"), "payments");
      assert.equal(seen?.req.headers.get("x-request-id"), "r1");
      for (const hop of ["x-secret", "keep-alive", "te"]) assert.equal(seen?.req.headers.get(hop), null, hop);

      assert.equal(connections.length, 1);
      assert.equal(connections[0]?.peerIdentity, PAYMENTS_ID);
      assert.equal(connections[0]?.reused, false);
      assert.equal(connections[0]?.peerSerial, pki.payments.serial);
      assert.equal(typeof connections[0]?.handshakeMs, "number");
    });
  });

  test("a client without a certificate is refused at the handshake", async () => {
    await withResources(async ({ listener }) => {
      let handled = false;
      const refused = deferred<{ reason: string; remote: string }>();
      const l = await listener(strict(async () => { handled = true; return new Response("no"); }, {
        onRefused: (reason, remote) => refused.resolve({ reason, remote }),
      }));
      await assert.rejects(rawRequest({ secure: true, port: l.port, path: "/", ca: pki.rootPem, checkServerIdentity: () => undefined }));
      const { reason, remote } = await refused.promise;
      assert.match(reason, /no certificate/);
      assert.match(remote, /^127\.0\.0\.1:\d+$/);
      assert.ok(reason.includes(remote));
      assert.equal(handled, false);
    });
  });

  test("a client certificate from another CA is refused at the handshake", async () => {
    await withResources(async ({ listener }) => {
      let handled = false;
      const refused = deferred<{ reason: string; remote: string }>();
      const l = await listener(strict(async () => { handled = true; return new Response("no"); }, {
        onRefused: (reason, remote) => refused.resolve({ reason, remote }),
      }));
      await assert.rejects(rawRequest({
        secure: true, port: l.port, path: "/", ca: pki.rootPem, cert: pki.stranger.certPem, key: pki.stranger.keyPem,
        checkServerIdentity: () => undefined,
      }));
      const { reason, remote } = await refused.promise;
      assert.match(reason, /does not chain to the trust bundle/);
      assert.match(remote, /^127\.0\.0\.1:\d+$/);
      assert.equal(handled, false);
    });
  });

  test("a verifier that never answers does not hold the caller: refused after the headers timeout, nothing handled", async () => {
    await withResources(async ({ listener }) => {
      let handled = false;
      const refused = deferred<{ reason: string; kind: string | undefined }>();
      const l = await listener({
        ...strict(async () => { handled = true; return new Response("no"); }, {
          verifyPeer: () => new Promise<string>(() => {}),
          onRefused: (reason, _remote, kind) => refused.resolve({ reason, kind }),
        }),
        limits: { requestHeadersTimeoutMs: 300 },
      });
      const answer = rawRequest({
        secure: true, port: l.port, path: "/held", ca: pki.rootPem, cert: pki.orders.certPem, key: pki.orders.keyPem,
        checkServerIdentity: () => undefined,
      }).then(() => "answered", () => "cut");
      const { reason, kind } = await refused.promise;
      assert.match(reason, /certificate was not verified within 300 ms/);
      assert.equal(kind, "identity");
      assert.equal(await answer, "cut");
      assert.equal(handled, false);
    });
  });

  test("a caller the verifier rejects is disconnected and reported; accepted callers are verified once per connection", async () => {
    await withResources(async ({ listener, upstream }) => {
      const verifier = sanVerifier([PAYMENTS_ID]); // orders is not allowed in
      const refused = deferred<string>();
      let handled = false;
      const l = await listener(strict(async () => { handled = true; return new Response("no"); }, {
        verifyPeer: verifier.verify,
        onRefused: (reason) => refused.resolve(reason),
      }));
      const err = await upstream().send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" })
        .then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof UpstreamError, String(err));
      assert.match(await refused.promise, new RegExp(`${ORDERS_ID} is not allowed here`));
      assert.equal(handled, false);

      // The payments identity is let in; two keep-alive requests cost one verification.
      const payments = upstream(() => pki.material(pki.paymentsRotated));
      verifier.calls = 0;
      for (let i = 0; i < 2; i++) {
        const res = await payments.send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" });
        assert.equal(await res.text(), "no");
      }
      assert.equal(verifier.calls, 1);
    });
  });

  test("a server presenting an unexpected SPIFFE ID fails with kind tls, naming both identities", async () => {
    await withResources(async ({ listener, upstream }) => {
      let handled = false;
      const l = await listener({ ...strict(async () => { handled = true; return new Response("no"); }), tls: {
        mode: "STRICT", material: () => pki.material(pki.orders), verifyPeer: sanVerifier().verify,
      } });
      const err = await rejectsWithKind(
        upstream().send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" }),
        "tls",
      );
      assert.ok(err.message.includes(l.address), err.message);
      assert.ok(err.message.includes(ORDERS_ID), err.message);
      assert.ok(err.message.includes(PAYMENTS_ID), err.message);
      assert.equal(err.endpoint, l.address);
      assert.equal(handled, false);
    });
  });

  test("a server certificate from another CA fails with kind tls", async () => {
    await withResources(async ({ listener, upstream }) => {
      const l = await listener({ listen: LOOPBACK, handler: ok, tls: {
        mode: "STRICT", material: () => pki.material(pki.stranger, pki.rootPem), verifyPeer: sanVerifier().verify,
      } });
      const err = await rejectsWithKind(
        upstream().send(new Request("http://payments/"), { address: l.address, identity: OTHER_ID }, { signal: signal(), tls: "MUTUAL" }),
        "tls",
      );
      assert.match(err.message, /does not chain to the trust bundle/);
    });
  });

  test("a second request reuses the pooled connection", async () => {
    await withResources(async ({ listener, upstream }) => {
      const l = await listener(strict(ok));
      const u = upstream();
      const seen: ConnectionInfo[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await u.send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, {
          signal: signal(), tls: "MUTUAL", onConnection: (c) => seen.push(c),
        });
        assert.equal(await res.text(), "ok");
      }
      assert.deepEqual(seen.map((c) => c.reused), [false, true]);
      assert.equal(seen[1]?.peerIdentity, PAYMENTS_ID);
      assert.equal(seen[1]?.handshakeMs, undefined);
    });
  });

  test("an idle pooled connection is closed after idleTimeoutMs; the next request opens a new one", async () => {
    await withResources(async ({ listener }) => {
      const l = await listener(strict(ok));
      const u = runtime.createUpstream({ material: () => pki.material(pki.orders), verifyPeer: sanVerifier().verify, idleTimeoutMs: 200 });
      try {
        const seen: ConnectionInfo[] = [];
        const once = async () => {
          const res = await u.send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL", onConnection: (c) => seen.push(c) });
          assert.equal(await res.text(), "ok");
        };
        await once();
        await once();
        await new Promise((r) => setTimeout(r, 700));
        await once();
        assert.deepEqual(seen.map((c) => c.reused), [false, true, false]);
      } finally {
        u.close();
      }
    });
  });

  test("a pooled connection the server dropped is replaced transparently for a replayable request", async () => {
    await withResources(async ({ upstream }) => {
      // Answers the first request on each connection and drops the connection at the
      // second, as a server closing an idle keep-alive connection does in the race.
      const perSocket = new WeakMap<object, number>();
      const server = https.createServer({ ...tlsServerOptions(pki.payments) }, (req, res) => {
        const n = (perSocket.get(req.socket) ?? 0) + 1;
        perSocket.set(req.socket, n);
        if (n > 1) req.socket.destroy();
        else res.end(`served-${n}`);
      });
      const port = await listen(server);
      try {
        const u = upstream();
        const seen: ConnectionInfo[] = [];
        const endpoint = { address: `127.0.0.1:${port}`, identity: PAYMENTS_ID };
        for (let i = 0; i < 2; i++) {
          const res = await u.send(new Request("http://payments/"), endpoint, { signal: signal(), tls: "MUTUAL", onConnection: (c) => seen.push(c) });
          assert.equal(await res.text(), "served-1");
        }
        assert.deepEqual(seen.map((c) => c.reused), [false, true, false]);

        // A request with a body is not replayed: the reset surfaces for retry_policy.
        const fresh = upstream();
        await (await fresh.send(new Request("http://payments/"), endpoint, { signal: signal(), tls: "MUTUAL" })).text();
        const post = fresh.send(new Request("http://payments/", { method: "POST", body: "x" }), endpoint, { signal: signal(), tls: "MUTUAL" });
        await rejectsWithKind(post, "reset");
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });

  test("reloadTls serves the new certificate to new connections", async () => {
    await withResources(async ({ listener, upstream }) => {
      let leaf = pki.payments;
      const l = await listener({ listen: LOOPBACK, handler: ok, tls: { mode: "STRICT", material: () => pki.material(leaf), verifyPeer: sanVerifier().verify } });
      const u = upstream();
      const serials: (string | undefined)[] = [];
      const call = async () => {
        const res = await u.send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, {
          signal: signal(), tls: "MUTUAL", onConnection: (c) => serials.push(c.peerSerial),
        });
        await res.text();
      };
      await call();
      leaf = pki.paymentsRotated;
      l.reloadTls();
      u.reloadTls(); // drop the pooled connection, which keeps the old certificate
      await call();
      assert.deepEqual(serials, [pki.payments.serial, pki.paymentsRotated.serial]);
    });
  });

  test("PERMISSIVE serves plaintext and mTLS on one port", async () => {
    await withResources(async ({ listener, upstream }) => {
      const infos: ConnInfo[] = [];
      const l = await listener({
        listen: LOOPBACK,
        handler: async (req, info) => { infos.push(info); return new Response(`${new URL(req.url).protocol}${await req.text()}`); },
        tls: { mode: "PERMISSIVE", material: () => pki.material(pki.payments), verifyPeer: sanVerifier().verify },
      });
      const plain = await rawRequest({ port: l.port, path: "/", method: "POST" }, "plain-body");
      assert.equal(plain.body, "http:plain-body");
      const res = await upstream().send(new Request("http://payments/", { method: "POST", body: "tls-body" }), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" });
      assert.equal(await res.text(), "https:tls-body");
      assert.deepEqual(infos.map((i) => [i.mtls, i.peerIdentity]), [[false, undefined], [true, ORDERS_ID]]);
    });
  });

  test("PERMISSIVE keep-alive answers a streamed reply without a delayed-ACK stall (Nagle off)", async () => {
    await withResources(async ({ listener }) => {
      // No content-length: the head is flushed, then the body follows in a second small
      // write, which Nagle would hold until the client's delayed ACK (~40 ms on Linux).
      const l = await listener({
        listen: LOOPBACK,
        handler: async () => new Response("app failed\n", { status: 503 }),
        tls: { mode: "PERMISSIVE", material: () => pki.material(pki.payments), verifyPeer: sanVerifier().verify },
      });
      const agent = new http.Agent({ keepAlive: true });
      try {
        const times: number[] = [];
        for (let i = 0; i < 5; i++) {
          const started = performance.now();
          await new Promise<void>((resolve, reject) => {
            const req = http.request({ host: "127.0.0.1", port: l.port, method: "POST", agent }, (res) => {
              res.resume();
              res.on("end", resolve);
            });
            req.on("error", reject);
            req.end("amount=1");
          });
          times.push(performance.now() - started);
        }
        const warm = times.slice(1).sort((a, b) => a - b);
        assert.ok(warm[1]! < 30, `keep-alive requests took ${times.map((t) => t.toFixed(1)).join(", ")} ms`);
      } finally {
        agent.destroy();
      }
    });
  });

  test("SIMPLE upstream verifies the server's chain and identity without presenting a certificate", async () => {
    await withResources(async ({ upstream }) => {
      let clientCert: unknown;
      const server = https.createServer({ cert: pki.payments.certPem, key: pki.payments.keyPem }, (req, res) => {
        const socket = req.socket as TLSSocket;
        // Bun's node:https server has no getPeerCertificate; there the check is skipped.
        clientCert = typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate() : {};
        res.end("simple");
      });
      const port = await listen(server);
      try {
        const seen: ConnectionInfo[] = [];
        const res = await upstream().send(new Request("http://payments/"), { address: `127.0.0.1:${port}`, identity: PAYMENTS_ID }, {
          signal: signal(), tls: "SIMPLE", onConnection: (c) => seen.push(c),
        });
        assert.equal(await res.text(), "simple");
        assert.equal(seen[0]?.peerIdentity, PAYMENTS_ID);
        assert.deepEqual(clientCert, {});
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });

  test("DISABLE upstream streams plain HTTP to a plain listener", async () => {
    await withResources(async ({ listener, upstream }) => {
      const l = await listener({ listen: LOOPBACK, handler: async (req) => new Response(req.body, { headers: { "x-len": req.headers.get("content-length") ?? "chunked" } }) });
      const body = new ReadableStream<Uint8Array>({
        start(c) { c.enqueue(new TextEncoder().encode("a".repeat(100_000))); c.enqueue(new TextEncoder().encode("b")); c.close(); },
      });
      const seen: ConnectionInfo[] = [];
      const res = await upstream().send(new Request("http://orders/echo", { method: "PUT", body, duplex: "half" } as RequestInit),
        { address: l.address }, { signal: signal(), tls: "DISABLE", onConnection: (c) => seen.push(c) });
      const text = await res.text();
      assert.equal(text.length, 100_001);
      assert.ok(text.endsWith("ab"));
      assert.equal(res.headers.get("x-len"), "chunked");
      assert.equal(seen[0]?.peerIdentity, undefined);
    });
  });
});

describe('clientCert "request" (control plane: join-token callers have no certificate yet)', { timeout: 20_000 }, () => {
  const seenBy = (infos: { url: string; info: ConnInfo }[]): Handler => async (req, info) => {
    infos.push({ url: req.url, info });
    return new Response("in");
  };
  const tlsClient = (leaf?: { certPem: string; keyPem: string }) => ({
    secure: true, path: "/join", ca: pki.rootPem, checkServerIdentity: () => undefined,
    ...(leaf ? { cert: leaf.certPem, key: leaf.keyPem } : {}),
  });

  test("a caller without a certificate is served over TLS with mtls false and no identity", async () => {
    await withResources(async ({ listener }) => {
      const infos: { url: string; info: ConnInfo }[] = [];
      const refusals: string[] = [];
      const l = await listener(strict(seenBy(infos), { clientCert: "request", onRefused: (reason) => refusals.push(reason) }));
      const res = await rawRequest({ ...tlsClient(), port: l.port });
      assert.equal(res.status, 200);
      assert.equal(res.body, "in");
      assert.equal(infos.length, 1);
      assert.match(infos[0]!.url, /^https:\/\//);
      assert.equal(infos[0]!.info.mtls, false);
      assert.equal(infos[0]!.info.peerIdentity, undefined);
      assert.deepEqual(refusals, []);
    });
  });

  test("a caller with a valid certificate gets mtls true and its verified identity, verified once per connection", async () => {
    await withResources(async ({ listener, upstream }) => {
      const infos: { url: string; info: ConnInfo }[] = [];
      const verifier = sanVerifier();
      const l = await listener(strict(seenBy(infos), { clientCert: "request", verifyPeer: verifier.verify }));
      const u = upstream();
      for (let i = 0; i < 2; i++) {
        const res = await u.send(new Request("http://control/join"), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" });
        assert.equal(await res.text(), "in");
      }
      assert.deepEqual(infos.map((s) => [s.info.mtls, s.info.peerIdentity]), [[true, ORDERS_ID], [true, ORDERS_ID]]);
      assert.equal(verifier.calls, 1);
    });
  });

  test("a certificate from another CA is refused, not downgraded to an anonymous caller", async () => {
    await withResources(async ({ listener }) => {
      const infos: { url: string; info: ConnInfo }[] = [];
      const refused = deferred<{ reason: string; remote: string }>();
      const l = await listener(strict(seenBy(infos), { clientCert: "request", onRefused: (reason, remote) => refused.resolve({ reason, remote }) }));
      await assert.rejects(rawRequest({ ...tlsClient(pki.stranger), port: l.port }));
      const { reason, remote } = await refused.promise;
      assert.match(reason, /does not chain to the trust bundle/);
      assert.match(remote, /^127\.0\.0\.1:\d+$/);
      assert.equal(infos.length, 0);
    });
  });

  test("a certificate the verifier rejects is refused", async () => {
    await withResources(async ({ listener }) => {
      const infos: { url: string; info: ConnInfo }[] = [];
      const refused = deferred<string>();
      const l = await listener(strict(seenBy(infos), {
        clientCert: "request",
        verifyPeer: sanVerifier([PAYMENTS_ID]).verify,
        onRefused: (reason) => refused.resolve(reason),
      }));
      await assert.rejects(rawRequest({ ...tlsClient(pki.orders), port: l.port }));
      assert.match(await refused.promise, new RegExp(`${ORDERS_ID} is not allowed here`));
      assert.equal(infos.length, 0);
    });
  });
});

describe("upstream failures", { timeout: 20_000 }, () => {

  test("a request body that fails midway rejects with its own error, not an UpstreamError", async () => {
    await withResources(async ({ listener, upstream }) => {
      const l = await listener({ listen: LOOPBACK, handler: async (req) => new Response(await req.text()) });
      const broken = new Error("downstream client went away");
      let sent = false;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (!sent) { sent = true; c.enqueue(new TextEncoder().encode("partial")); } else c.error(broken);
        },
      });
      const pending = upstream().send(new Request("http://orders/", { method: "POST", body, duplex: "half" } as RequestInit), { address: l.address }, { signal: signal(), tls: "DISABLE" });
      await assert.rejects(pending, (err) => err === broken);
    });
  });
  test("ECONNREFUSED is a connect-failure naming the address", async () => {
    await withResources(async ({ upstream }) => {
      const address = `127.0.0.1:${await closedPort()}`;
      const err = await rejectsWithKind(upstream().send(new Request("http://payments/"), { address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" }), "connect-failure");
      assert.ok(err.message.includes(address), err.message);
      assert.match(err.message, /connection refused/);
    });
  });

  test("a peer that accepts TCP and drops it during the TLS handshake is a connect-failure", async () => {
    await withResources(async ({ upstream }) => {
      const server = net.createServer((socket) => socket.destroy());
      const port = await listen(server);
      try {
        await rejectsWithKind(upstream().send(new Request("http://payments/"), { address: `127.0.0.1:${port}`, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" }), "connect-failure");
      } finally {
        server.close();
      }
    });
  });

  test("a handshake that never completes is a connect-failure after connectTimeoutMs", async () => {
    const server = net.createServer(() => {}); // accepts TCP, never answers the ClientHello
    const port = await listen(server);
    // connectTimeoutMs is an adapter option beyond UpstreamFactoryOptions; every adapter takes it.
    const u = runtime.createUpstream({ material: () => pki.material(pki.orders), verifyPeer: sanVerifier().verify, connectTimeoutMs: 100 } as Parameters<LoadedRuntime["createUpstream"]>[0]);
    try {
      const err = await rejectsWithKind(u.send(new Request("http://payments/"), { address: `127.0.0.1:${port}`, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" }), "connect-failure");
      assert.match(err.message, /no connection within 100 ms/);
    } finally {
      u.close();
      server.close();
    }
  });

  test("an mTLS server that resets after reading the request is a reset", async () => {
    await withResources(async ({ upstream }) => {
      const server = https.createServer(tlsServerOptions(pki.payments), (req) => {
        req.resume();
        req.on("end", () => req.socket.destroy());
      });
      const port = await listen(server);
      try {
        const err = await rejectsWithKind(upstream().send(new Request("http://payments/charge", { method: "POST", body: "x" }), { address: `127.0.0.1:${port}`, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" }), "reset");
        assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
      } finally {
        server.closeAllConnections();
        server.close();
      }
    });
  });

  test("a per-try timeout (AbortSignal.timeout) is kind timeout; other aborts propagate their reason", async () => {
    await withResources(async ({ listener, upstream }) => {
      const l = await listener(strict(() => new Promise<Response>(() => {})));
      const u = upstream();
      const endpoint = { address: l.address, identity: PAYMENTS_ID };
      await rejectsWithKind(u.send(new Request("http://payments/"), endpoint, { signal: AbortSignal.timeout(100), tls: "MUTUAL" }), "timeout");

      const controller = new AbortController();
      const reason = new Error("caller gave up");
      const pending = u.send(new Request("http://payments/"), endpoint, { signal: controller.signal, tls: "MUTUAL", onConnection: () => controller.abort(reason) });
      await assert.rejects(pending, (err) => err === reason);
    });
  });

  // The send stage trusts an upstream that declares cancelsOnSignal to stop by itself: it
  // races no abort against it and hands it the client's Request uncopied (src/core/upstream.ts).
  test("the upstream declares cancelsOnSignal and keeps it: a signal aborted before the send, or during the TLS handshake, rejects with its reason", async () => {
    // Accepts TCP and never answers the ClientHello: the attempt is stuck in its handshake.
    const silent = net.createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      await withResources(async ({ listener, upstream }) => {
        let handled = 0;
        const l = await listener(strict(async () => (handled++, new Response("ok"))));
        const u = upstream();
        assert.equal(isCancellingOnSignal(u.send), true, `${runtime.name}'s upstream does not declare cancelsOnSignal`);

        const reason = new Error("client left before the send");
        await assert.rejects(u.send(new Request("http://payments/"), { address: l.address, identity: PAYMENTS_ID }, { signal: AbortSignal.abort(reason), tls: "MUTUAL" }), (err) => err === reason);
        assert.equal(handled, 0, "an aborted send reached the listener");

        const controller = new AbortController();
        const mid = new Error("client left during the handshake");
        const { port } = silent.address() as net.AddressInfo;
        const pending = u.send(new Request("http://payments/"), { address: `127.0.0.1:${port}`, identity: PAYMENTS_ID }, { signal: controller.signal, tls: "MUTUAL" });
        setTimeout(() => controller.abort(mid), 100);
        await assert.rejects(pending, (err) => err === mid);
      });
    } finally {
      silent.close();
    }
  });
});

describe("upstream framing", { timeout: 20_000 }, () => {
  test("a megabyte of varied bytes crosses mTLS intact both ways, chunked and with a length", async () => {
    await withResources(async ({ listener, upstream }) => {
      const payload = new Uint8Array(1_048_576 + 17);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 11)) & 0xff;
      const l = await listener(strict(async (req) => {
        const got = new Uint8Array(await req.arrayBuffer());
        const same = got.length === payload.length && got.every((b, i) => b === payload[i]);
        const body = req.headers.get("x-shape") === "length" ? got : new Blob([got]).stream();
        return new Response(body, { headers: { "x-same": String(same) } });
      }));
      const u = upstream();
      for (const shape of ["length", "chunked"]) {
        const body = shape === "length" ? payload : new Blob([payload]).stream();
        const res = await u.send(new Request("http://payments/upload", { method: "POST", body, headers: { "x-shape": shape }, duplex: "half" } as RequestInit),
          { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" });
        assert.equal(res.headers.get("x-same"), "true", `${shape}: the listener saw different bytes`);
        const back = new Uint8Array(await res.arrayBuffer());
        assert.equal(back.length, payload.length, shape);
        assert.ok(back.every((b, i) => b === payload[i]), `${shape}: the reply differs`);
      }
    });
  });

  test("HEAD, 204 and 304 carry no body and leave the connection reusable; encoded bodies pass undecoded", async () => {
    await withResources(async ({ listener, upstream }) => {
      const gz = new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0, 0x86, 0xa6, 0x10, 0x36, 5, 0, 0, 0]);
      const l = await listener(strict(async (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/204") return new Response(null, { status: 204 });
        if (path === "/304") return new Response(null, { status: 304, headers: { etag: "\"v1\"" } });
        if (path === "/gz") return new Response(gz, { headers: { "content-encoding": "gzip" } });
        return new Response("body-for-get", { headers: { "x-kind": "head" } });
      }));
      const u = upstream();
      const seen: ConnectionInfo[] = [];
      const send = (method: string, path: string) => u.send(new Request(`http://payments${path}`, { method }), { address: l.address, identity: PAYMENTS_ID },
        { signal: signal(), tls: "MUTUAL", onConnection: (c) => seen.push(c) });
      const head = await send("HEAD", "/");
      assert.equal(head.headers.get("x-kind"), "head");
      assert.equal(await head.text(), "");
      assert.equal((await send("GET", "/204")).status, 204);
      const notModified = await send("GET", "/304");
      assert.equal(notModified.status, 304);
      assert.equal(notModified.headers.get("etag"), "\"v1\"");
      const encoded = await send("GET", "/gz");
      assert.equal(encoded.headers.get("content-encoding"), "gzip");
      assert.deepEqual(new Uint8Array(await encoded.arrayBuffer()), gz);
      // Bodiless answers leave the connection reusable. The node adapter hands it back to its
      // pool a turn after the response (on Deno even later), so only the last request, sent
      // after a body was read, is sure to find it; the Bun adapter reuses it every time.
      assert.equal(seen.at(-1)?.reused, true, `connections reused: ${seen.map((c) => c.reused).join(",")}`);
      if (runtime.adapter === "bun") assert.deepEqual(seen.map((c) => c.reused), [false, true, true, true]);
    });
  });

  test("concurrent requests to one endpoint each get an answer, on pooled connections afterwards", async () => {
    await withResources(async ({ listener, upstream }) => {
      const l = await listener(strict(async (req) => new Response(new URL(req.url).searchParams.get("n"))));
      const u = upstream();
      const call = async (n: number) => {
        const res = await u.send(new Request(`http://payments/?n=${n}`), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL" });
        return res.text();
      };
      const first = await Promise.all(Array.from({ length: 8 }, (_, n) => call(n)));
      assert.deepEqual(first, Array.from({ length: 8 }, (_, n) => String(n)));
      const seen: ConnectionInfo[] = [];
      const res = await u.send(new Request("http://payments/?n=x"), { address: l.address, identity: PAYMENTS_ID }, { signal: signal(), tls: "MUTUAL", onConnection: (c) => seen.push(c) });
      assert.equal(await res.text(), "x");
      assert.equal(seen[0]?.reused, true);
    });
  });
});

function tlsServerOptions(leaf: { certPem: string; keyPem: string }): https.ServerOptions {
  return { cert: leaf.certPem, key: leaf.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true };
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}
