// The native Bun HTTP/1.1 listener (src/runtime/bun/native-serve.ts) on raw sockets: strict
// RFC 9112 framing, pipelining in order, 100-continue, response framing, keep-alive and
// half-close; under mTLS (native-tls.ts) the verdict before any request, the headers
// timeout, a stalled handshake, rotation beside live connections and ALPN h2. The shared
// suites cover the ServeOptions contract; these cover what only a hand-written server can
// get wrong. Bun only: node and Deno have no Bun.listen.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { ConnInfo, Handler, Listener, ServeOptions, TlsRefusal } from "../../src/runtime/types.ts";
import { mintTestPki, ORDERS_ID, type Leaf, type TestPki } from "./helpers/certs.ts";
import { sanVerifier } from "./helpers/verifier.ts";

const isBun = "Bun" in globalThis;

async function withListener(handler: Handler, run: (l: Listener) => Promise<void>): Promise<void> {
  const { nativeServe } = await import("../../src/runtime/bun/native-serve.ts");
  const l = await nativeServe({ listen: "127.0.0.1:0", handler });
  try {
    await run(l);
  } finally {
    await l.close(0);
  }
}

/** Writes `parts` (a pause between them) and collects what comes back until the server closes or `until` matches. */
function converse(port: number, parts: string[], until?: RegExp, o: { halfClose?: boolean } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closed });
    };
    const timer = setTimeout(() => (done = true, socket.destroy(), reject(new Error(`no answer; got ${JSON.stringify(text)}`))), 10_000);
    socket.on("data", (c: Buffer) => {
      text += c.toString("latin1");
      if (until?.test(text)) finish(false);
    });
    socket.on("error", () => {});
    socket.on("close", () => finish(true));
    socket.once("connect", async () => {
      for (const p of parts) {
        socket.write(Buffer.from(p, "latin1"));
        await new Promise((r) => setTimeout(r, 20));
      }
      if (o.halfClose) socket.end();
    });
  });
}

const echo: Handler = async (req) => {
  const body = req.body ? new Uint8Array(await req.arrayBuffer()) : new Uint8Array(0);
  return new Response(`${req.method} ${new URL(req.url).pathname} ${new TextDecoder().decode(body)}`, { headers: { "content-length": String(`${req.method} ${new URL(req.url).pathname} `.length + body.length) } });
};

describe("native Bun HTTP/1.1 listener", { skip: !isBun && "Bun.listen is Bun's" }, () => {
  test("the handler sees every request field as sent, names the Fetch standard guards included", async () => {
    // The listener appends fields to the Request's own Headers after building it; a Bun that
    // applied the "request" guard there would silently drop host, cookie or content-length.
    let seen: [string, string][] = [];
    const handler: Handler = async (req) => {
      seen = [...req.headers];
      await req.arrayBuffer();
      return new Response("ok", { headers: { "content-length": "2" } });
    };
    await withListener(handler, async (l) => {
      const r = await converse(l.port, ["POST /f HTTP/1.1\r\nHost: payments\r\nCookie: a=1\r\nConnection: keep-alive\r\nContent-Length: 3\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-A: 1\r\nx-a: 2\r\n\r\nxyz"], /\r\n\r\nok$/);
      assert.match(r.text, /^HTTP\/1\.1 200 /);
    });
    assert.deepEqual(seen, [["connection", "keep-alive"], ["content-length", "3"], ["cookie", "a=1"], ["host", "payments"], ["keep-alive", "timeout=5"], ["te", "trailers"], ["x-a", "1, 2"]]);
  });

  test("pipelined requests are answered in order, HEAD without a body, and the close is honoured", async () => {
    await withListener(echo, async (l) => {
      const r = await converse(l.port, [
        "GET /a HTTP/1.1\r\nhost: h\r\n\r\nPOST /b HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nxyzHEAD /c HTTP/1.1\r\nhost: h\r\n\r\nGET /d HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n",
      ]);
      assert.equal(r.closed, true);
      const bodies = [...r.text.matchAll(/\r\n\r\n([A-Z]+ \/[a-d] [a-z]*)/g)].map((m) => m[1]);
      assert.deepEqual(bodies, ["GET /a ", "POST /b xyz", "GET /d "]);
      assert.equal((r.text.match(/HTTP\/1\.1 200/g) ?? []).length, 4);
      assert.match(r.text, /connection: close\r\n\r\nGET \/d $/);
    });
  });

  test("smuggling shapes are refused with 400 and the connection closed, nothing reaches the handler", async () => {
    const seen: string[] = [];
    // A head with a broken chunked body may reach the handler (the body is streamed); the body never does.
    const handler: Handler = async (req) => {
      const body = req.body ? await req.text() : "";
      seen.push(`${new URL(req.url).pathname} ${body}`);
      return new Response("ok");
    };
    await withListener(handler, async (l) => {
      const bad = [
        "POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /x HTTP/1.1\r\nhost: h\r\ncontent-length: 4\r\ncontent-length: 5\r\n\r\nabcde",
        "POST /x HTTP/1.1\r\nhost: h\r\ntransfer-encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "POST /x HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
        "GET /x HTTP/1.1\r\nhost: h\r\nx-a: 1\r\n folded\r\n\r\n",
        "GET /x HTTP/1.1\r\nhost : h\r\n\r\n",
        "GET /x HTTP/1.1\nhost: h\n\n",
        "GET /x HTTP/1.1\r\nhost: h\rx\r\n\r\n",
        "GET /x HTTP/1.1\r\nhost: h\0\r\n\r\n",
        "FROB /x HTTP/1.1\r\nhost: h\r\n\r\n",
      ];
      for (const input of bad) {
        const r = await converse(l.port, [input]);
        assert.match(r.text, /^HTTP\/1\.1 400 Bad Request\r\n[\s\S]*connection: close/, JSON.stringify(input));
        assert.equal(r.closed, true, JSON.stringify(input));
      }
      assert.deepEqual(seen, []);
    });
  });

  test("the node adapter's sentences: no version, Host count, a GET with a body", async () => {
    await withListener(echo, async (l) => {
      const cases: [string, RegExp][] = [
        ["GET /x\r\nhost: h\r\n\r\n", /request line has no HTTP version/],
        ["GET /x HTTP/1.1\r\n\r\n", /HTTP\/1\.1 request has no Host header/],
        ["GET /x HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n", /request has 2 Host header fields/],
        ["GET /x HTTP/1.1\r\nhost: h\r\ncontent-length: 2\r\n\r\nab", /a GET request with a body/],
        ["GET x HTTP/1.1\r\nhost: h\r\n\r\n", /request target "x" is not supported/],
      ];
      for (const [input, sentence] of cases) {
        const r = await converse(l.port, [input]);
        assert.match(r.text, /^HTTP\/1\.1 400 /);
        assert.match(r.text, sentence);
      }
    });
  });

  test("chunked request with extensions and trailers; a streamed response is chunked, and close-delimited for HTTP/1.0", async () => {
    const handler: Handler = async (req) => {
      const text = req.body ? await req.text() : "";
      return new Response(new ReadableStream({ start(c) { c.enqueue(new TextEncoder().encode(`got:${text}`)); c.enqueue(new TextEncoder().encode("!")); c.close(); } }));
    };
    await withListener(handler, async (l) => {
      const r = await converse(l.port, ["POST /x HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n", "2\r\nde\r\n0\r\nx-t: 1\r\n\r\n"], /0\r\n\r\n$/);
      assert.match(r.text, /transfer-encoding: chunked\r\n/);
      assert.match(r.text, /\r\n\r\n9\r\ngot:abcde\r\n1\r\n!\r\n0\r\n\r\n$/);
      const old = await converse(l.port, ["GET /x HTTP/1.0\r\n\r\n"]);
      assert.equal(old.closed, true);
      assert.doesNotMatch(old.text, /transfer-encoding/);
      assert.match(old.text, /connection: close\r\n\r\ngot:!$/);
    });
  });

  test("Expect: 100-continue is answered when the handler reads the body", async () => {
    await withListener(echo, async (l) => {
      const socket = net.connect(l.port, "127.0.0.1");
      let text = "";
      socket.on("data", (c: Buffer) => (text += c.toString("latin1")));
      await new Promise((r) => socket.once("connect", r));
      socket.write("POST /e HTTP/1.1\r\nhost: h\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n");
      for (let i = 0; i < 200 && !text.includes("100 Continue"); i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(text, "HTTP/1.1 100 Continue\r\n\r\n");
      socket.write("ok");
      for (let i = 0; i < 200 && !text.includes("POST /e ok"); i++) await new Promise((r) => setTimeout(r, 10));
      socket.destroy();
      assert.match(text, /HTTP\/1\.1 200 OK[\s\S]*POST \/e ok$/);
    });
  });

  test("a client that half-closes after pipelining gets every answer, then our FIN", async () => {
    await withListener(echo, async (l) => {
      const r = await converse(l.port, ["GET /a HTTP/1.1\r\nhost: h\r\n\r\nGET /b HTTP/1.1\r\nhost: h\r\n\r\n"], undefined, { halfClose: true });
      assert.equal(r.closed, true);
      assert.match(r.text, /GET \/a [\s\S]*GET \/b $/);
    });
  });

  test("an unread body is skipped so the next pipelined request starts at the right byte", async () => {
    const handler: Handler = async (req) => new Response(new URL(req.url).pathname, { headers: { "content-length": "2" } });
    await withListener(handler, async (l) => {
      const r = await converse(l.port, ["POST /a HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n\r\nhelloGET /", "b HTTP/1.1\r\nhost: h\r\nconnection: close\r\n\r\n"]);
      assert.match(r.text, /\r\n\r\n\/a[\s\S]*\r\n\r\n\/b$/);
    });
  });
});

describe("native Bun mTLS (STRICT) listener", { skip: !isBun && "Bun.listen is Bun's" }, () => {
  let pki: TestPki;
  before(() => {
    pki = mintTestPki();
  });
  after(() => pki?.cleanup());

  const refusals: { kind: TlsRefusal | undefined; reason: string }[] = [];
  async function withTls(handler: Handler, extra: Omit<Partial<ServeOptions>, "tls"> & { tls?: Partial<NonNullable<ServeOptions["tls"]>> }, run: (l: Listener) => Promise<void>): Promise<void> {
    const { nativeServe } = await import("../../src/runtime/bun/native-serve.ts");
    refusals.length = 0;
    const { tls: tlsExtra, ...rest } = extra;
    const l = await nativeServe({
      ...rest,
      listen: "127.0.0.1:0",
      handler,
      tls: {
        mode: "STRICT",
        material: () => pki.material(pki.payments),
        verifyPeer: sanVerifier().verify,
        onRefused: (reason, _remote, kind) => void refusals.push({ kind, reason }),
        ...tlsExtra,
      },
    });
    try {
      await run(l);
    } finally {
      await l.close(0);
    }
  }

  function connect(port: number, leaf: Leaf | undefined, o: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
    return new Promise((ok, fail) => {
      const s = tls.connect({ host: "127.0.0.1", port, ca: pki.rootPem, checkServerIdentity: () => undefined, ...(leaf ? { cert: leaf.certPem, key: leaf.keyPem } : {}), ...o }, () => ok(s));
      s.once("error", fail);
    });
  }

  /** Collects what `socket` receives until it closes or `until` matches. */
  function collect(socket: net.Socket, until?: RegExp): Promise<{ text: string; closed: boolean }> {
    return new Promise((resolve) => {
      let text = "";
      const timer = setTimeout(() => (socket.destroy(), resolve({ text, closed: false })), 10_000);
      socket.on("data", (c: Buffer) => {
        text += c.toString("latin1");
        if (until?.test(text)) (clearTimeout(timer), resolve({ text, closed: false }));
      });
      socket.on("error", () => {});
      socket.on("close", () => (clearTimeout(timer), resolve({ text, closed: true })));
    });
  }

  /** A body with its length, so a reply ends where `collect` can tell. */
  const sized = (text: string) => new Response(text, { headers: { "content-length": String(text.length) } });

  const untilRefused = async () => {
    for (let i = 0; i < 200 && refusals.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  };

  test("no request is handled before the caller's SPIFFE ID is settled; the handler sees https and the identity", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const verifier = sanVerifier();
    const seen: { url: string; info: ConnInfo }[] = [];
    const handler: Handler = async (req, info) => (seen.push({ url: req.url, info }), sized("ok"));
    await withTls(handler, { tls: { verifyPeer: async (chain, expected) => (await gate, verifier.verify(chain, expected)) } }, async (l) => {
      const s = await connect(l.port, pki.orders);
      const reply = collect(s, /\r\n\r\nok$/);
      s.write("GET /a HTTP/1.1\r\nhost: payments\r\n\r\n");
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(seen.length, 0, "a request was handled before verifyPeer settled");
      release();
      assert.match((await reply).text, /^HTTP\/1\.1 200 OK/);
      s.destroy();
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.url, "https://payments/a");
      assert.equal(seen[0]!.info.mtls, true);
      assert.equal(seen[0]!.info.peerIdentity, ORDERS_ID);
    });
  });

  test("an identity the verifier refuses: closed, reported as identity, the handler never runs", async () => {
    let calls = 0;
    const handler: Handler = async () => (calls++, sized("ok"));
    await withTls(handler, { tls: { verifyPeer: sanVerifier(["spiffe://cluster.local/ns/default/sa/billing"]).verify } }, async (l) => {
      const s = await connect(l.port, pki.orders);
      s.write("GET / HTTP/1.1\r\nhost: payments\r\n\r\n");
      const r = await collect(s);
      assert.equal(r.closed, true);
      assert.equal(r.text, "");
      await untilRefused();
      assert.equal(calls, 0);
      assert.equal(refusals[0]?.kind, "identity");
      assert.match(refusals[0]!.reason, /^mTLS client 127\.0\.0\.1:\d+ refused: .*not allowed here/);
    });
  });

  test('clientCert "request": no certificate is accepted without an identity; one from another root is refused', async () => {
    const infos: ConnInfo[] = [];
    const handler: Handler = async (_req, info) => (infos.push(info), sized("ok"));
    await withTls(handler, { tls: { clientCert: "request" } }, async (l) => {
      const anonymous = await connect(l.port, undefined);
      const reply = collect(anonymous, /\r\n\r\nok$/);
      anonymous.write("GET / HTTP/1.1\r\nhost: control\r\n\r\n");
      assert.match((await reply).text, /^HTTP\/1\.1 200 OK/);
      anonymous.destroy();
      assert.deepEqual({ mtls: infos[0]?.mtls, id: infos[0]?.peerIdentity }, { mtls: false, id: undefined });
      const stranger = await connect(l.port, pki.stranger);
      stranger.write("GET / HTTP/1.1\r\nhost: control\r\n\r\n");
      assert.equal((await collect(stranger)).text, "");
      await untilRefused();
      assert.equal(refusals[0]?.kind, "untrusted");
      assert.equal(infos.length, 1);
    });
  });

  test("a head that stalls inside mTLS is answered 408 after the headers timeout", async () => {
    await withTls(async () => sized("ok"), { limits: { requestHeadersTimeoutMs: 300 } }, async (l) => {
      const s = await connect(l.port, pki.orders);
      s.write("GET / HTTP/1.1\r\nhost: pay");
      const r = await collect(s);
      assert.match(r.text, /^HTTP\/1\.1 408 [\s\S]*x-remora-rejected: headers_timeout/);
      assert.equal(r.closed, true);
    });
  });

  test("a client that connects and never finishes the handshake is closed after the headers timeout", async () => {
    await withTls(async () => sized("ok"), { limits: { requestHeadersTimeoutMs: 300 } }, async (l) => {
      const s = net.connect(l.port, "127.0.0.1");
      s.write(Buffer.from([0x16, 0x03, 0x01])); // the start of a TLS record, then nothing
      const r = await collect(s);
      assert.equal(r.closed, true);
      await untilRefused();
      assert.equal(refusals[0]?.kind, "handshake");
      assert.match(refusals[0]!.reason, /did not complete the TLS handshake within 300 ms/);
    });
  });

  test("reloadTls: new connections get the new certificate on the same port, a live one keeps working", async () => {
    let leaf = pki.payments;
    const handler: Handler = async (req) => sized(new URL(req.url).pathname);
    await withTls(handler, { tls: { material: () => pki.material(leaf) } }, async (l) => {
      const old = await connect(l.port, pki.orders);
      const serial = (s: tls.TLSSocket) => s.getPeerCertificate().serialNumber.toUpperCase();
      assert.equal(serial(old), pki.payments.serial);
      leaf = pki.paymentsRotated;
      l.reloadTls();
      const fresh = await connect(l.port, pki.orders);
      assert.equal(serial(fresh), pki.paymentsRotated.serial);
      fresh.destroy();
      const reply = collect(old, /\r\n\r\n\/still$/);
      old.write("GET /still HTTP/1.1\r\nhost: payments\r\n\r\n");
      assert.match((await reply).text, /^HTTP\/1\.1 200 OK/);
      old.destroy();
    });
  });

  test("SO_REUSEPORT (for rotation) does not let a second listener share a taken port", async () => {
    const { nativeServe } = await import("../../src/runtime/bun/native-serve.ts");
    await withTls(async () => sized("ok"), {}, async (l) => {
      const again = nativeServe({ listen: l.address, handler: async () => sized("ok"), tls: { mode: "STRICT", material: () => pki.material(pki.payments), verifyPeer: sanVerifier().verify } });
      await assert.rejects(again, /cannot listen on 127\.0\.0\.1:\d+: address already in use/);
    });
  });

  test("ALPN h2 with streams.h2: HTTP/2 inside mTLS, with the caller's identity", async () => {
    const handler: Handler = async (req, info) => new Response(`${req.headers.get("remora-proto")} ${info.peerIdentity} ${new URL(req.url).protocol}`);
    await withTls(handler, { streams: { h2: true } }, async (l) => {
      const session = http2.connect(`https://127.0.0.1:${l.port}`, { ca: pki.rootPem, cert: pki.orders.certPem, key: pki.orders.keyPem, checkServerIdentity: () => undefined });
      try {
        const text = await new Promise<string>((ok, fail) => {
          const stream = session.request({ ":path": "/x", ":authority": "payments" });
          let body = "";
          stream.setEncoding("utf8");
          stream.on("data", (c: string) => (body += c));
          stream.on("end", () => ok(body));
          stream.on("error", fail);
          stream.end();
        });
        assert.equal(text, `h2 ${ORDERS_ID} https:`);
      } finally {
        session.destroy();
      }
    });
  });
});
