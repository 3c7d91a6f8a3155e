// The Bun upstream's reading of a response head (src/runtime/bun/http1-response.ts) against
// a raw TCP server that sends exactly the bytes each test writes: line endings, field
// whitespace, interim answers, framing and malformed heads. The shared runtime suites talk
// to well-behaved servers only. Bun only: the module runs on Bun.connect.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { UpstreamError } from "../../src/core/upstream.ts";

const isBun = "Bun" in globalThis;

/** A server that answers each request (after its blank line) with `answer`, then keeps or closes the connection. */
async function answering(answer: string, close = false): Promise<{ address: string; stop(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    let seen = "";
    socket.on("data", (d) => {
      seen += d.toString("latin1");
      if (!seen.includes("\r\n\r\n")) return;
      seen = "";
      socket.write(answer, "latin1");
      if (close) socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    stop: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function send(answer: string, close = false): Promise<Response> {
  const { createUpstream } = await import("../../src/runtime/bun/upstream.ts");
  const upstream = createUpstream({ material: () => ({ certPem: "", keyPem: "", bundlePem: "" }), verifyPeer: () => Promise.reject(new Error("no TLS here")) });
  const server = await answering(answer, close);
  try {
    const res = await upstream.send(new Request("http://app/x"), { address: server.address }, { signal: new AbortController().signal, tls: "DISABLE" });
    // Read the body while the server is up: a body framed by the close needs it.
    const body = await res.arrayBuffer();
    return new Response(res.status === 204 || res.status === 304 ? null : body, { status: res.status, statusText: res.statusText, headers: res.headers });
  } finally {
    upstream.close();
    await server.stop();
  }
}

describe("Bun upstream: the response head", { skip: !isBun && "the Bun upstream runs on Bun.connect" }, () => {
  test("CRLF head: status, reason, fields with their whitespace trimmed, body by Content-Length", async () => {
    const res = await send("HTTP/1.1 201 Made It\r\nX-One:  a b \r\nx-two:\tc\r\nContent-Length: 5\r\n\r\nhello");
    assert.equal(res.status, 201);
    assert.equal(res.statusText, "Made It");
    assert.equal(res.headers.get("x-one"), "a b");
    assert.equal(res.headers.get("x-two"), "c");
    assert.equal(await res.text(), "hello");
  });

  test("bare LF line endings are accepted (RFC 9112 §2.2), and an empty field value", async () => {
    const res = await send("HTTP/1.1 200 OK\nx-empty:\nx-three: 3\ncontent-length: 2\n\nok");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("x-empty"), "");
    assert.equal(res.headers.get("x-three"), "3");
    assert.equal(await res.text(), "ok");
  });

  test("a status line alone, without reason or fields: the body runs to the close", async () => {
    const res = await send("HTTP/1.0 200\r\n\r\nuntil the end", true);
    assert.equal(res.status, 200);
    assert.equal(res.statusText, "");
    assert.equal(await res.text(), "until the end");
  });

  test("an interim 103 is skipped and the final answer read", async () => {
    const res = await send("HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nfin");
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("link"), null);
    assert.equal(await res.text(), "fin");
  });

  test("repeated identical Content-Length values frame the body", async () => {
    const res = await send("HTTP/1.1 200 OK\r\ncontent-length: 4, 4\r\n\r\nfour");
    assert.equal(await res.text(), "four");
  });

  for (const [what, head] of [
    ["a field line without a colon", "HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 0\r\n\r\n"],
    ["a field line with an empty name", "HTTP/1.1 200 OK\r\n: value\r\ncontent-length: 0\r\n\r\n"],
    ["a status line that is not HTTP/1.x", "HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n"],
    ["differing Content-Length values", "HTTP/1.1 200 OK\r\ncontent-length: 3, 4\r\n\r\nabcd"],
    // Refused by the Response's Headers (a space is no token character), with no body, a whole body, or a streamed one.
    ["a field name Headers refuses, no body", "HTTP/1.1 200 OK\r\nbad name: x\r\ncontent-length: 0\r\n\r\n"],
    ["a field name Headers refuses, the body with the head", "HTTP/1.1 200 OK\r\nbad name: x\r\ncontent-length: 4\r\n\r\nfour"],
    ["a field name Headers refuses, a chunked body", "HTTP/1.1 200 OK\r\nbad name: x\r\ntransfer-encoding: chunked\r\n\r\n4\r\nfour\r\n0\r\n\r\n"],
  ] as const) {
    test(`${what} fails the attempt as a reset`, async () => {
      await assert.rejects(send(head), (err: unknown) => err instanceof UpstreamError && err.kind === "reset");
    });
  }
});
