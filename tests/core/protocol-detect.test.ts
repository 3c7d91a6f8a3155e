// Protocol detection from first bytes (src/core/protocol/detect.ts) and the HTTP/1.1 heads a
// tunnel writes and reads (src/core/protocol/http1-head.ts). Pure: no sockets.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { DETECT_MAX_BYTES, detectProtocol, H2_PREFACE } from "../../src/core/protocol/detect.ts";
import { closingResponse, parseResponseHead, requestHead } from "../../src/core/protocol/http1-head.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const RUNS = { numRuns: 2_000, interruptAfterTimeLimit: 5_000 };

/** Every prefix of `s` shorter than `decidedAt` is undecided; from there on it is `expected`. */
function growing(s: Uint8Array, decidedAt: number, expected: string): void {
  for (let n = 1; n <= s.length; n++) {
    const got = detectProtocol(s.subarray(0, n));
    assert.equal(got, n < decidedAt ? undefined : expected, `after ${n} bytes`);
  }
}

describe("detectProtocol", () => {
  test("an empty read decides nothing", () => {
    assert.equal(detectProtocol(new Uint8Array(0)), undefined);
  });

  test("HTTP/1.x: a known method then a space, decided at the space", () => {
    for (const m of ["GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"]) {
      growing(bytes(`${m} /x HTTP/1.1\r\nHost: a\r\n\r\n`), m.length + 1, "http1");
    }
    assert.equal(detectProtocol(bytes("CONNECT payments:5432 HTTP/1.1\r\n")), "http1");
  });

  test("a method in lower case or without its space is not HTTP", () => {
    assert.equal(detectProtocol(bytes("get / HTTP/1.1")), "opaque");
    assert.equal(detectProtocol(bytes("GETX")), "opaque");
    assert.equal(detectProtocol(bytes("PROPFIND / HTTP/1.1")), "opaque");
  });

  test("HTTP/2 prior knowledge only with the whole 24-byte preface", () => {
    growing(bytes(`${H2_PREFACE}\x00\x00\x12\x04`), 24, "h2");
    assert.equal(detectProtocol(bytes("PRI * HTTP/1.1\r\n\r\n")), "opaque");
  });

  test("a TLS ClientHello record: 0x16 0x03 0x0X", () => {
    const hello = Uint8Array.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]);
    growing(hello, 3, "tls");
    assert.equal(detectProtocol(Uint8Array.from([0x16, 0x03, 0x03])), "tls");
    assert.equal(detectProtocol(Uint8Array.from([0x16, 0x02])), "opaque");
    assert.equal(detectProtocol(Uint8Array.from([0x16, 0x03, 0x09])), "opaque");
  });

  test("server-first and binary client-first protocols are opaque at the first telling byte", () => {
    // PostgreSQL SSLRequest: length 8, code 80877103.
    assert.equal(detectProtocol(Uint8Array.from([0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f])), "opaque");
    assert.equal(detectProtocol(bytes("*1\r\n$4\r\nPING\r\n")), "opaque"); // Redis
    assert.equal(detectProtocol(bytes("HELO mail.example\r\n")), "opaque"); // SMTP, client side
    assert.equal(detectProtocol(bytes("G")), undefined);
    assert.equal(detectProtocol(bytes("GZ")), "opaque");
  });

  test("never throws, and decides once 24 bytes are in (fast-check)", () => {
    assert.equal(DETECT_MAX_BYTES, 24);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
        const got = detectProtocol(b);
        if (b.length >= DETECT_MAX_BYTES) assert.notEqual(got, undefined);
        if (got !== undefined) assert.ok(["http1", "h2", "tls", "opaque"].includes(got));
      }),
      RUNS,
    );
  });

  test("a decision never changes as more bytes arrive (fast-check)", () => {
    const seeds = fc.oneof(
      fc.constantFrom(H2_PREFACE, "GET / HTTP/1.1\r\n", "CONNECT a:1 HTTP/1.1\r\n", "\x16\x03\x01\x00", "PRI * HTTP/2", "OPTIONS * HTTP/1.1").map(bytes),
      fc.uint8Array({ maxLength: 40 }),
    );
    fc.assert(
      fc.property(seeds, fc.uint8Array({ maxLength: 30 }), (head, tail) => {
        const whole = new Uint8Array([...head, ...tail]);
        let decided: string | undefined;
        for (let n = 1; n <= whole.length; n++) {
          const got = detectProtocol(whole.subarray(0, n));
          if (decided !== undefined) assert.equal(got, decided, `changed at ${n} bytes`);
          decided ??= got;
        }
      }),
      RUNS,
    );
  });
});

describe("HTTP/1.1 heads for tunnels", () => {
  test("a CONNECT answer is parsed with the bytes past it left for the tunnel", () => {
    const wire = bytes("HTTP/1.1 200 Connection established\r\nx-remora: 1\r\n\r\n\x00server-first");
    const head = parseResponseHead(wire);
    assert.ok(head);
    assert.equal(head.status, 200);
    assert.equal(head.reason, "Connection established");
    assert.equal(head.headers.get("x-remora"), "1");
    assert.equal(new TextDecoder().decode(wire.subarray(head.length)), "\x00server-first");
  });

  test("an incomplete head waits; a non-HTTP answer is an error naming it", () => {
    assert.equal(parseResponseHead(bytes("HTTP/1.1 200 OK\r\n")), undefined);
    assert.throws(() => parseResponseHead(bytes("SSH-2.0-OpenSSH\r\n\r\n")), /not an HTTP\/1\.1 status line/);
    assert.throws(() => parseResponseHead(bytes("HTTP/1.1 403 Forbidden\r\nbroken\r\n\r\n")), /malformed response header/);
  });

  test("request heads refuse header injection", () => {
    const head = new TextDecoder().decode(requestHead("CONNECT", "127.0.0.1:5432", [["host", "127.0.0.1:5432"]]));
    assert.equal(head, "CONNECT 127.0.0.1:5432 HTTP/1.1\r\nhost: 127.0.0.1:5432\r\n\r\n");
    assert.throws(() => requestHead("GET", "/", [["x", "a\r\nevil: 1"]]), /line break/);
  });

  test("a closing refusal carries its length and reason", () => {
    const text = new TextDecoder().decode(closingResponse(403, "Forbidden", "remora: port 22 is not allowed\n"));
    assert.match(text, /^HTTP\/1\.1 403 Forbidden\r\n/);
    assert.match(text, /content-length: 31\r\n/);
    assert.match(text, /connection: close\r\n\r\nremora: port 22 is not allowed\n$/);
  });
});
