// The native Bun HTTP/1.1 listener (src/runtime/bun/native-serve.ts) on raw sockets: strict
// RFC 9112 framing, pipelining in order, 100-continue, response framing, keep-alive and
// half-close. The shared suites cover the ServeOptions contract; these cover what only a
// hand-written parser can get wrong. Bun only: node and Deno have no Bun.listen.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { Handler, Listener } from "../../src/runtime/types.ts";

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
