// A reference reading of raw request bytes (RFC 9112) for the listener fuzzer: which
// requests a correct server may hand on, so a request reaching the app that is not among
// them is a smuggled or misframed one. Where the RFC lets a recipient choose (bare LF as a
// line end, obs-fold unfolded, NUL or bare CR in a value replaced by SP, identical duplicate
// Content-Length), the oracle takes the choice that accepts more: a stricter server hands on
// fewer requests, never others. Framing is exact: a request's body is what its
// Transfer-Encoding or Content-Length says, and nothing after a request the server must
// close on (CL together with TE, RFC 9112 §6.1) may be handed on.

export interface OracleRequest {
  method: string;
  /** The request target as sent. */
  target: string;
  /** Path and query as an app behind a proxy sees them (WHATWG URL normalised), or undefined for "*" and authority-form. */
  path: string | undefined;
  body: string;
}

export interface OracleReading {
  /** Complete, well-formed requests in the order a correct server may hand them on (a prefix of them). */
  complete: OracleRequest[];
  /** A well-formed head whose body did not fully arrive or broke its framing (it may reach the app cut short). */
  partial: OracleRequest[];
  /** A well-formed CONNECT or Upgrade request: the connection may legitimately turn into a tunnel. */
  tunnel: boolean;
  /** Bytes follow the last complete request that are not a request a server should answer in turn. */
  trailing: boolean;
}

const TCHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const MAX_DEPTH = 4;

/**
 * Known divergences a test may tolerate while they are open, each named so it stays visible:
 * `duplicateHost` takes a request with several Host lines as valid (RFC 9112 §3.2 says 400).
 */
export interface OracleAllowances {
  duplicateHost?: boolean;
}

/** Reads `bytes` (one char per byte, latin1) as a client's stream of requests. */
export function readRequests(bytes: string, allow: OracleAllowances = {}): OracleReading {
  const out: OracleReading = { complete: [], partial: [], tunnel: false, trailing: false };
  readStream(bytes, 0, out, 0, allow);
  return out;
}

/** Path and query as the app sees them behind a proxy: WHATWG URL rules, as remora builds its Request. */
export function appPath(target: string): string | undefined {
  try {
    if (target.startsWith("/")) {
      const u = new URL(`http://h${target}`);
      return u.pathname + u.search;
    }
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(target)) {
      const u = new URL(target);
      return u.pathname + u.search;
    }
  } catch {
    return undefined;
  }
  return undefined;
}

interface Line {
  text: string;
  next: number;
}

/** One line ending in LF (a preceding CR dropped, RFC 9112 §2.2); undefined when no LF arrived yet. */
function line(bytes: string, at: number): Line | undefined {
  const lf = bytes.indexOf("\n", at);
  if (lf < 0) return undefined;
  const end = lf > at && bytes[lf - 1] === "\r" ? lf - 1 : lf;
  return { text: bytes.slice(at, end), next: lf + 1 };
}

function readStream(bytes: string, start: number, out: OracleReading, depth: number, allow: OracleAllowances): void {
  let at = start;
  for (;;) {
    // Empty lines before a request-line are ignored (RFC 9112 §2.2).
    while (bytes.startsWith("\r\n", at) || bytes[at] === "\n") at += bytes[at] === "\n" ? 1 : 2;
    if (at >= bytes.length) return;
    // Whatever ends the reading from here on leaves bytes the server cannot answer in turn.
    out.trailing = true;
    const head = readHead(bytes, at, allow);
    if (head === undefined) return;
    const req = head.request;
    // CONNECT and Upgrade hand the bytes after the head to someone else: those may be read as requests too.
    if (!head.refused && (req.method === "CONNECT" || head.fields.has("upgrade"))) {
      out.tunnel = true;
      if (depth < MAX_DEPTH) readStream(bytes, head.next, out, depth + 1, allow);
    }
    const body = readBody(bytes, head.next, head.framing);
    if (body === "invalid" || body === "incomplete") {
      // A streaming server may hand on the head and the body's first bytes before it finds
      // the framing broken or the input ended: the app may see this request, cut short.
      if (!head.refused) out.partial.push(req);
      return;
    }
    req.body = body.body;
    if (head.refused) {
      // Stopping here is as right as going on (a 400 may close the connection or not).
      if (head.mustClose) return;
      at = body.next;
      continue;
    }
    out.complete.push(req);
    if (head.mustClose) {
      out.trailing = body.next < bytes.length;
      return;
    }
    at = body.next;
    out.trailing = req.method === "CONNECT" || head.fields.has("upgrade");
    if (out.trailing) return;
  }
}

type Framing = { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" };

interface Head {
  request: OracleRequest;
  fields: Map<string, string[]>;
  framing: Framing;
  /** The server must close after answering (RFC 9112 §6.1, CL with TE), so nothing after it counts. */
  mustClose: boolean;
  /** Well framed but to be refused (Host or target): it must not reach the app. */
  refused: boolean;
  next: number;
}

function readHead(bytes: string, at: number, allow: OracleAllowances): Head | undefined {
  const first = line(bytes, at);
  if (first === undefined) return undefined;
  // Whitespace-delimited words are allowed (RFC 9112 §3), bare CR among them.
  const words = first.text.split(/[ \t\v\f\r]+/).filter((w) => w !== "");
  if (words.length !== 3) return undefined;
  const [method, target, version] = words as [string, string, string];
  if (!TCHAR.test(method) || !/^[\x21-\x7e]+$/.test(target) || !/^HTTP\/1\.\d$/.test(version)) return undefined;
  const fields = new Map<string, string[]>();
  let last: string[] | undefined;
  let pos = first.next;
  for (;;) {
    const l = line(bytes, pos);
    if (l === undefined) return undefined;
    pos = l.next;
    if (l.text === "") break;
    if (/^[ \t]/.test(l.text)) {
      // obs-fold: unfolded into the previous value (RFC 9112 §5.2); before any field, ignored.
      if (last) last[last.length - 1] += ` ${clean(l.text)}`;
      continue;
    }
    const colon = l.text.indexOf(":");
    if (colon <= 0) return undefined;
    const name = l.text.slice(0, colon);
    if (!TCHAR.test(name)) return undefined;
    const values = fields.get(name.toLowerCase()) ?? [];
    values.push(clean(l.text.slice(colon + 1)));
    fields.set(name.toLowerCase(), values);
    last = values;
  }
  const http10 = version === "HTTP/1.0";
  const hosts = fields.get("host") ?? [];
  // Host and target rules (RFC 9112 §3.2, §3.2.1-4) make the request one to refuse, but its
  // framing still says where it ends: a server may go on with the requests after it.
  const refused =
    (http10 ? hosts.length > 1 && !allow.duplicateHost : hosts.length === 0 || (hosts.length > 1 && !allow.duplicateHost)) ||
    (method === "CONNECT" ? !/^[^/?#@\s]+:\d+$/.test(target) : target === "*" ? method !== "OPTIONS" : appPath(target) === undefined);
  const te = fields.get("transfer-encoding");
  const cl = fields.get("content-length");
  let framing: Framing = { kind: "none" };
  let mustClose = /(^|,)\s*close\s*(,|$)/i.test((fields.get("connection") ?? []).join(","));
  if (te !== undefined) {
    const codings = te.join(",").split(",").map((c) => c.trim().toLowerCase()).filter((c) => c !== "");
    if (codings.length !== 1 || codings[0] !== "chunked") return undefined;
    framing = { kind: "chunked" };
    if (cl !== undefined || http10) mustClose = true;
  } else if (cl !== undefined) {
    const items = cl.join(",").split(",").map((c) => c.trim());
    if (!items.every((c) => /^\d+$/.test(c)) || new Set(items.map((c) => BigInt(c))).size !== 1) return undefined;
    const n = BigInt(items[0]!);
    framing = { kind: "length", length: n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n) };
  }
  const path = method === "CONNECT" || target === "*" ? undefined : appPath(target);
  return { request: { method, target, path, body: "" }, fields, framing, mustClose, refused, next: pos };
}

/** A field value as a lenient recipient keeps it: OWS trimmed, NUL and bare CR as SP (RFC 9112 §5.5, §2.2). */
const clean = (v: string) => v.replace(/[\0\r]/g, " ").trim();

function readBody(bytes: string, at: number, framing: Framing): { body: string; next: number } | "incomplete" | "invalid" {
  if (framing.kind === "none") return { body: "", next: at };
  if (framing.kind === "length") {
    if (bytes.length - at < framing.length) return "incomplete";
    return { body: bytes.slice(at, at + framing.length), next: at + framing.length };
  }
  let body = "";
  let pos = at;
  for (;;) {
    const crlf = bytes.indexOf("\r\n", pos);
    // A chunk line must end in CRLF (RFC 9112 §7.1): an LF alone makes the framing invalid.
    if (crlf < 0) return bytes.includes("\n", pos) ? "invalid" : "incomplete";
    const sizeLine = bytes.slice(pos, crlf);
    const m = /^([0-9A-Fa-f]+)[ \t]*(;[^\0-\x08\x0a-\x1f\x7f]*)?$/.exec(sizeLine);
    if (!m) return "invalid";
    const size = parseInt(m[1]!, 16);
    pos = crlf + 2;
    if (size === 0) {
      // Trailer fields, then the empty line.
      for (;;) {
        const l = line(bytes, pos);
        if (l === undefined) return "incomplete";
        pos = l.next;
        if (l.text === "") return { body, next: pos };
        const colon = l.text.indexOf(":");
        if (colon <= 0 || !TCHAR.test(l.text.slice(0, colon))) return "invalid";
      }
    }
    if (!Number.isSafeInteger(size) || bytes.length - pos < size + 2) return "incomplete";
    body += bytes.slice(pos, pos + size);
    pos += size;
    if (!bytes.startsWith("\r\n", pos)) return "invalid";
    pos += 2;
  }
}
