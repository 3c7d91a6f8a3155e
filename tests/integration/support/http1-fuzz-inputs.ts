// fast-check arbitraries of raw client bytes for the listener fuzzer: random bytes, valid
// requests and byte-level mutations of them, and the classic request-parsing attacks
// (Content-Length / Transfer-Encoding smuggling, obs-fold, NUL and bare CR, unusual target
// forms, overlong methods, HTTP/0.9, the HTTP/2 preface, pipelining). Strings hold one byte
// per char (latin1).

import fc from "fast-check";

/** What a listener's valid requests look like. */
export interface Dialect {
  /** Paths to ask for; `{id}` becomes a number, so a request that reaches the app can be told apart. */
  paths: readonly string[];
  host: string;
  /** Scheme and authority for absolute-form targets (a proxy's outbound), if the listener routes them. */
  absolute?: string;
}

const METHODS = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH"] as const;
const token = fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/);
const value = fc.string({ maxLength: 24, unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) });
const bodyText = fc.oneof(fc.string({ maxLength: 48 }), fc.string({ maxLength: 48, unit: "binary-ascii" }));

const chunked = (body: string, sizes: (n: number) => string = (n) => n.toString(16)) =>
  `${body === "" ? "" : `${sizes(body.length)}\r\n${body}\r\n`}0\r\n\r\n`;

/** A well-formed request (with a unique path), and the path id it carries. */
export function validRequest(d: Dialect): fc.Arbitrary<string> {
  return fc
    .record({
      method: fc.constantFrom(...METHODS),
      path: fc.constantFrom(...d.paths),
      id: fc.nat({ max: 999_999 }),
      absolute: fc.boolean(),
      framing: fc.constantFrom("none", "length", "chunked"),
      body: bodyText,
      headers: fc.array(fc.tuple(token, value), { maxLength: 3 }),
      close: fc.boolean(),
    })
    .map((r) => {
      const path = r.path.replace("{id}", String(r.id));
      const target = r.absolute && d.absolute ? `${d.absolute}${path}` : path;
      let head = `${r.method} ${target} HTTP/1.1\r\nhost: ${d.host}\r\n`;
      for (const [k, v] of r.headers) head += `x-${k}: ${v}\r\n`;
      if (r.close) head += "connection: close\r\n";
      if (r.framing === "length") return `${head}content-length: ${r.body.length}\r\n\r\n${r.body}`;
      if (r.framing === "chunked") return `${head}transfer-encoding: chunked\r\n\r\n${chunked(r.body)}`;
      return `${head}\r\n`;
    });
}

/** Byte-level mutations: flip a bit, set, delete, insert, duplicate a slice, truncate. */
export function mutated(base: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const op = fc.tuple(fc.nat(), fc.constantFrom("flip", "set", "delete", "insert", "dup", "truncate"), fc.integer({ min: 0, max: 255 }), fc.nat({ max: 12 }));
  return fc.tuple(base, fc.array(op, { minLength: 1, maxLength: 4 })).map(([s, ops]) => {
    let b = s;
    for (const [at, kind, v, n] of ops) {
      const i = b.length === 0 ? 0 : at % b.length;
      const c = String.fromCharCode(v);
      if (kind === "flip") b = b.slice(0, i) + String.fromCharCode((b.charCodeAt(i) || 0) ^ (1 << (v % 8))) + b.slice(i + 1);
      else if (kind === "set") b = b.slice(0, i) + c + b.slice(i + 1);
      else if (kind === "delete") b = b.slice(0, i) + b.slice(i + n + 1);
      else if (kind === "insert") b = b.slice(0, i) + c.repeat(n + 1) + b.slice(i);
      else if (kind === "dup") b = b.slice(0, i + n + 1) + b.slice(i);
      else b = b.slice(0, i);
    }
    return b;
  });
}

/** A request the fuzzer never sends as a request of its own: it may reach the app only by being smuggled. */
const smuggled = (d: Dialect, id: number) => `GET /smuggled/${id} HTTP/1.1\r\nhost: ${d.host}\r\n\r\n`;

/** Content-Length / Transfer-Encoding framing attacks, each hiding a second request in the body. */
export function smuggling(d: Dialect): fc.Arbitrary<string> {
  const variants: ((p: { id: number; path: string; body: string; s: string }) => string)[] = [
    // CL.TE and TE.CL: the two headers disagree about where the body ends.
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ncontent-length: ${5 + s.length}\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${s}`,
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\ncontent-length: 4\r\n\r\n${(s.length + 2).toString(16)}\r\n${s}\r\n0\r\n\r\n`,
    // TE.TE: codings a parser may or may not take for chunked.
    ...["chunked, chunked", "xchunked", "chunked ", " chunked", "Chunked", "identity, chunked", "chunked, identity", "chunk", "\tchunked", "chunked\0"].map(
      (te) =>
        ({ path, s }: { path: string; s: string }) =>
          `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: ${te}\r\ncontent-length: ${5 + s.length}\r\n\r\n0\r\n\r\n${s}`,
    ),
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\ntransfer-encoding: identity\r\n\r\n0\r\n\r\n${s}`,
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding:\r\n chunked\r\ncontent-length: ${5 + s.length}\r\n\r\n0\r\n\r\n${s}`,
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding : chunked\r\ncontent-length: ${5 + s.length}\r\n\r\n0\r\n\r\n${s}`,
    ({ path, s }) => `POST ${path} HTTP/1.0\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${s}`,
    // Content-Length: duplicate, list, signed, hex, huge, spaced.
    ...["5\r\ncontent-length: 5", "5\r\ncontent-length: 6", "5, 5", "5, 6", "+5", "-5", "0x5", "5 5", "05", "99999999999999999999", "18446744073709551621", "", " 5 "].map(
      (cl) =>
        ({ path, body, s }: { path: string; body: string; s: string }) =>
          `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ncontent-length: ${cl}\r\n\r\n${body}${s}`,
    ),
    // Chunk sizes and lines a lenient parser may misread.
    ...["-1", "fffffffffffffffffff1", "0x5", "5 ;a", "5;a=\"b\r\nc\"", "5\n", " 5", "5\0", "+5", "00000000000000000005", "5;" + "a".repeat(9000)].map(
      (size) =>
        ({ path, body, s }: { path: string; body: string; s: string }) =>
          `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\n\r\n${size}\r\n${body.padEnd(5, "x").slice(0, 5)}\r\n0\r\n\r\n${s}`,
    ),
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\n\r\n5\nhello\n0\n\n${s}`,
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n${s}`,
    ({ path, s }) => `POST ${path} HTTP/1.1\r\nhost: ${d.host}\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nx-trailer: 1\r\ncontent-length: 3\r\n\r\n${s}`,
  ];
  return fc.record({ variant: fc.nat({ max: variants.length - 1 }), id: fc.nat({ max: 999_999 }), path: fc.constantFrom(...d.paths), body: bodyText }).map(({ variant, id, path, body }) =>
    variants[variant]!({ id, path: path.replace("{id}", String(id)), body, s: smuggled(d, id) }),
  );
}

/** Header-line anomalies: obs-fold, NUL and bare CR, whitespace before the colon, missing or doubled Host. */
export function headerAnomalies(d: Dialect): fc.Arbitrary<string> {
  const lines = [
    "x-a: b\r\n c", "x-a: b\r\n\tc", " x-a: b", "x-a: b\0c", "x-a: b\rc", "x-\0a: b", "x-a\r: b", "x-a : b", "x a: b", ": b", "x-a", "x-a: " + "b".repeat(70_000),
    `host: ${d.host}`, "host: ", "host: a b", "host: a\0b", "x-a: \x7f\x80\xff", "x-a:\x01b",
  ];
  return fc
    .record({ path: fc.constantFrom(...d.paths), id: fc.nat({ max: 999_999 }), extra: fc.subarray(lines, { minLength: 1, maxLength: 3 }), noHost: fc.boolean(), many: fc.constantFrom(0, 0, 150) })
    .map(({ path, id, extra, noHost, many }) => {
      const p = path.replace("{id}", String(id));
      const filler = Array.from({ length: many }, (_, i) => `x-h${i}: v\r\n`).join("");
      return `GET ${p} HTTP/1.1\r\n${noHost ? "" : `host: ${d.host}\r\n`}${filler}${extra.join("\r\n")}\r\n\r\n`;
    });
}

/** Request lines: target forms, overlong and odd methods, versions, HTTP/0.9, line endings, the HTTP/2 preface. */
export function requestLines(d: Dialect): fc.Arbitrary<string> {
  const h = `host: ${d.host}\r\n`;
  const fixed = [
    `OPTIONS * HTTP/1.1\r\n${h}\r\n`, `GET * HTTP/1.1\r\n${h}\r\n`, `CONNECT ${d.host}:80 HTTP/1.1\r\n${h}\r\n`, `CONNECT /fz HTTP/1.1\r\n${h}\r\n`,
    `GET http://${d.host}@evil.example/ HTTP/1.1\r\n${h}\r\n`, `GET //fz HTTP/1.1\r\n${h}\r\n`, `GET fz HTTP/1.1\r\n${h}\r\n`, `GET  HTTP/1.1\r\n${h}\r\n`,
    `GET /a b HTTP/1.1\r\n${h}\r\n`, `GET /\xff\x80 HTTP/1.1\r\n${h}\r\n`, `GET /#frag HTTP/1.1\r\n${h}\r\n`, `GET /%00 HTTP/1.1\r\n${h}\r\n`, `GET /../../etc/passwd HTTP/1.1\r\n${h}\r\n`,
    `GET ftp://${d.host}/ HTTP/1.1\r\n${h}\r\n`, `GET https://${d.host}/ HTTP/1.1\r\n${h}\r\n`, `GET http:/// HTTP/1.1\r\n${h}\r\n`,
    "GET /\r\n", "GET /fz/1\r\n\r\n", `GET / HTTP/0.9\r\n${h}\r\n`, `GET / HTTP/2.0\r\n${h}\r\n`, `GET / HTTP/1.2\r\n${h}\r\n`, `GET / HTTP/1.10\r\n${h}\r\n`,
    `GET / http/1.1\r\n${h}\r\n`, `GET / HTTP/1.1 x\r\n${h}\r\n`, `GET / HTTP/1.0\r\n\r\n`, `GET / HTTP/1.1\r\n\r\n`, `get / HTTP/1.1\r\n${h}\r\n`, `G\0T / HTTP/1.1\r\n${h}\r\n`,
    `GET / HTTP/1.1\n${h.replace("\r\n", "\n")}\n`, `GET / HTTP/1.1\r${h.replace("\r\n", "\r")}\r`, `\r\n\r\nGET / HTTP/1.1\r\n${h}\r\n`, `\n\nGET / HTTP/1.1\r\n${h}\r\n`,
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00", "PRI * HTTP/2.0\r\n\r\n",
    "\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", "", "\r\n", " ", "\0",
  ];
  const overlong = fc.constantFrom(20, 100, 1000, 9000, 70_000).map((n) => `${"A".repeat(n)} / HTTP/1.1\r\n${h}\r\n`);
  return fc.oneof(fc.constantFrom(...fixed), overlong);
}

/** Any client input: the families above, alone, mutated, or as a pipelined pair. */
export function clientBytes(d: Dialect): fc.Arbitrary<string> {
  const single = fc.oneof(
    { arbitrary: fc.uint8Array({ maxLength: 1024 }).map((b) => String.fromCharCode(...b)), weight: 2 },
    { arbitrary: validRequest(d), weight: 2 },
    { arbitrary: mutated(validRequest(d)), weight: 4 },
    { arbitrary: smuggling(d), weight: 4 },
    { arbitrary: mutated(smuggling(d)), weight: 2 },
    { arbitrary: headerAnomalies(d), weight: 2 },
    { arbitrary: requestLines(d), weight: 2 },
    { arbitrary: fc.string({ unit: fc.constantFrom("GET", " ", "/", "HTTP/1.1", "\r\n", "\n", "\r", ":", "host", "content-length", "transfer-encoding", "chunked", "0", "5", "\0", "a") , maxLength: 40 }), weight: 1 },
  );
  return fc.oneof({ arbitrary: single, weight: 4 }, { arbitrary: fc.tuple(single, single).map(([a, b]) => a + b), weight: 1 }, { arbitrary: fc.tuple(validRequest(d), single).map(([a, b]) => a + b), weight: 1 });
}
