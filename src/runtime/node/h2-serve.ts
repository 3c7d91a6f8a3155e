// The HTTP/2 side of a listener: each stream of an h2 session (prior-knowledge h2c on a
// plaintext port, ALPN "h2" under mTLS) becomes a web Request for the listener's handler,
// and the handler's Response goes back as HEADERS, DATA and trailers (gRPC's grpc-status).

import http2 from "node:http2";
import type net from "node:net";
import { Duplex } from "node:stream";
import type tls from "node:tls";
import { trailersOf } from "../../core/trailers.ts";
import type { ConnInfo, Handler, ListenerLimits } from "../types.ts";
import { connInfo } from "../conn-info.ts";
import { DEFAULT_LIMITS, LIMIT_STATUS, limitMessage } from "../limits.ts";
import { hopByHopNames } from "./hop-by-hop.ts";
import { detectRuntime } from "../detect.ts";
import { h2Body } from "./h2-body.ts";
import { PROTO_HEADER } from "../../core/protocol/proto-header.ts";

/** The header every Request that arrived over HTTP/2 carries (docs/protocols.md); defined in the core. */
export { PROTO_HEADER };

/**
 * Streams one session may run at once (SETTINGS_MAX_CONCURRENT_STREAMS). RFC 9113 §6.5.2
 * recommends no fewer than 100; a sidecar's peer is another sidecar multiplexing a whole
 * app's traffic, so it gets more room than a browser would.
 */
const MAX_CONCURRENT_STREAMS = 1_000;
/** Flow-control window per stream and per session: 64 KiB (the RFC default) throttles a single fast stream on loopback. */
const WINDOW_BYTES = 1 << 20;
/** An h2 session with no stream open for this long gets a GOAWAY (well above the client's idle timeout, as for HTTP/1.1 keep-alive). */
const IDLE_SESSION_MS = 65_000;

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM } = http2.constants;

export interface H2ServeOptions {
  limits?: ListenerLimits;
  /** A request or stream refused by a limit, with a sentence naming the peer. */
  onRejected?: (reason: "header_size" | "header_count" | "body_size" | "body_timeout", message: string, remote: string) => void;
}

/** Session settings that apply on both the h2c and the mTLS path. */
export function h2ServerOptions(limits: ListenerLimits = DEFAULT_LIMITS): http2.ServerOptions {
  return {
    settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS, initialWindowSize: WINDOW_BYTES, maxHeaderListSize: limits.maxRequestHeaderBytes },
    // nghttp2 counts pseudo-headers too; node refuses the stream past this with ENHANCE_YOUR_CALM.
    maxHeaderListPairs: limits.maxRequestHeaders + 8,
    maxSessionMemory: 64,
  };
}

/**
 * Takes over a plaintext connection whose first bytes were the HTTP/2 connection preface
 * ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", RFC 9113 §3.4). `head` holds the bytes the detector
 * already read; they are put back so nghttp2 sees the whole preface.
 */
export function acceptH2c(
  socket: net.Socket,
  head: Uint8Array,
  handler: Handler,
  info: ConnInfo,
  authority: string,
  limits: ListenerLimits = DEFAULT_LIMITS,
  onRejected?: H2ServeOptions["onRejected"],
): http2.ServerHttp2Session | undefined {
  const server = http2.createServer(h2ServerOptions(limits));
  let session: http2.ServerHttp2Session | undefined;
  server.on("session", (s: http2.ServerHttp2Session) => {
    session = s;
    serveH2Session(s, handler, info, "http", authority, { limits, ...(onRejected ? { onRejected } : {}) });
  });
  endsWithPeer(socket, () => session);
  // The detecting listener accepts half-open sockets for tunnels; an h2 client that closed
  // its side sends no more frames, so ours closes too (Deno's http2 would otherwise keep
  // such a session open until its idle timeout).
  socket.allowHalfOpen = false;
  const bytes = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (head.byteLength === 0) server.emit("connection", socket);
  else if (READS_NATIVE_HANDLE) server.emit("connection", replaying(socket, bytes));
  else {
    socket.unshift(bytes);
    server.emit("connection", socket);
  }
  socket.resume();
  // Returned so a draining listener can send GOAWAY (drainH2Session).
  return session;
}

/**
 * Node's http2 reads a net.Socket through its native handle, past any JS-level unshift(),
 * so bytes the detector already consumed would be lost there. Bun's and Deno's node:http2
 * read through JS, where unshift() works, and Bun's never reads a plain Duplex to its end
 * (the connection then lingers in CLOSE_WAIT after the client leaves).
 */
const READS_NATIVE_HANDLE = detectRuntime() === "node";

/** `socket` with `head` in front of what it reads next, as a plain Duplex node:http2 reads through JS. */
function replaying(socket: net.Socket, head: Buffer): Duplex {
  const joined = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, done) {
      socket.write(chunk, done);
    },
    final(done) {
      socket.end(done);
    },
    destroy(err, done) {
      socket.destroy(err ?? undefined);
      done(err);
    },
  });
  joined.push(head);
  socket.on("data", (chunk: Buffer) => {
    if (!joined.push(chunk)) socket.pause();
  });
  socket.once("end", () => joined.push(null));
  socket.on("error", (err) => joined.destroy(err));
  socket.once("close", () => joined.destroy());
  return joined;
}

/**
 * The mTLS side: what createTlsAcceptor calls for a connection that chose "h2" by ALPN.
 * No stream is read before the caller's certificate and SPIFFE ID are settled; a refused
 * caller's socket is closed by the acceptor.
 */
export function h2OverTls(
  handler: Handler,
  authority: () => string,
  limits: ListenerLimits = DEFAULT_LIMITS,
  onRejected?: H2ServeOptions["onRejected"],
  /** Each session served, so a draining listener can send it GOAWAY (drainH2Session). */
  onSession?: (session: http2.ServerHttp2Session) => void,
): (socket: tls.TLSSocket, verdict: Promise<string | undefined>) => void {
  return (socket, verdict) => {
    verdict.then((peerIdentity) => {
      if (socket.destroyed) return;
      const info = connInfo(socket, peerIdentity);
      const server = http2.createServer(h2ServerOptions(limits));
      let served: http2.ServerHttp2Session | undefined;
      server.on("session", (session: http2.ServerHttp2Session) => {
        served = session;
        onSession?.(session);
        serveH2Session(session, handler, info, "https", authority(), { limits, ...(onRejected ? { onRejected } : {}) });
      });
      endsWithPeer(socket, () => served);
      server.emit("connection", socket);
    }, () => {});
  };
}

/**
 * A client that closed its side of the connection sends no more frames: the session is
 * over. Node's and Deno's http2 notice by themselves; Bun's leaves the socket in
 * CLOSE_WAIT, which would hold a draining listener open until its grace period ends.
 * (Destroying the session this way on Deno 2.9 aborts the process: docs/runtimes.md.)
 */
const CLOSES_ON_PEER_END = detectRuntime() !== "bun";

function endsWithPeer(socket: net.Socket, session: () => http2.ServerHttp2Session | undefined): void {
  if (CLOSES_ON_PEER_END) return;
  socket.once("end", () => {
    const s = session();
    if (s && !s.destroyed) s.destroy();
    else socket.destroy();
  });
}

/**
 * Serves every stream of `session` through `handler`. `authority` is used when a request
 * has no :authority (RFC 9113 §8.3.1 lets a client omit it); `scheme` is the listener's.
 */
export function serveH2Session(
  session: http2.ServerHttp2Session,
  handler: Handler,
  info: ConnInfo,
  scheme: "http" | "https",
  authority: string,
  options: H2ServeOptions = {},
): void {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const remote = info.remote;
  let open = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const armIdle = () => {
    clearTimeout(idle);
    idle = open === 0 ? setTimeout(() => session.close(), IDLE_SESSION_MS) : undefined;
    idle?.unref?.();
  };
  session.on("error", () => {}); // the socket's end is reported through each stream
  session.on("close", () => clearTimeout(idle));
  session.setLocalWindowSize?.(WINDOW_BYTES);
  armIdle();

  session.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number) => {
    open++;
    armIdle();
    stream.once("close", () => {
      open--;
      armIdle();
    });
    stream.on("error", () => {}); // a reset by the client; the close handler below stops the work
    serveStream(stream, headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0).catch(() => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
  });

  async function serveStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, ended: boolean): Promise<void> {
    const method = String(headers[":method"] ?? "GET");
    const path = String(headers[":path"] ?? "/");
    if (method === "CONNECT" || !path.startsWith("/")) {
      // Extended CONNECT (RFC 8441) and authority-form targets are not routed over h2.
      return answer(stream, 501, `remora: ${method} ${path} over HTTP/2 is not supported; use HTTP/1.1 for tunnels`);
    }
    const fields = new Headers();
    let count = 0;
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(":") || value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) {
        fields.append(name, v);
        count++;
      }
    }
    if (count > limits.maxRequestHeaders) return refuse(stream, "header_count");
    const length = Number(fields.get("content-length") ?? 0);
    if (length > limits.maxRequestBodyBytes) return refuse(stream, "body_size");
    fields.set(PROTO_HEADER, "h2");
    const host = String(headers[":authority"] ?? headers.host ?? authority);

    const aborter = new AbortController();
    let finished = false;
    stream.once("close", () => {
      if (!finished) aborter.abort(new Error(`client ${remote} reset the HTTP/2 stream`));
    });
    let request: Request;
    try {
      const hasBody = !ended && method !== "GET" && method !== "HEAD";
      if (ended || !hasBody) stream.resume(); // nothing to read (or a body a GET must not have)
      request = new Request(`${scheme}://${host}${path}`, {
        method,
        headers: fields,
        body: hasBody
          ? h2Body(stream, {
            // A handler that stops reading (its upstream answered early) leaves the rest to
            // be dropped: destroying the stream would reset it before the response is out.
            onCancel: () => stream.resume(),
            closedEarly: () => new Error(`client ${remote} reset the HTTP/2 stream`),
            limits: { maxBytes: limits.maxRequestBodyBytes, idleMs: limits.requestBodyIdleTimeoutMs, onLimit: (reason) => refuseLate(stream, reason) },
          })
          : null,
        signal: aborter.signal,
        ...(hasBody ? { duplex: "half" } : {}),
      } as RequestInit);
    } catch {
      return answer(stream, 400, `remora: bad request target or :authority "${host}"`);
    }

    let response: Response;
    try {
      response = await handler(request, info);
    } catch {
      if (stream.destroyed) return;
      return answer(stream, 500, "internal error");
    }
    try {
      await writeResponse(stream, response, method === "HEAD");
    } finally {
      finished = true;
    }
  }

  function refuse(stream: http2.ServerHttp2Stream, reason: "header_count" | "body_size"): void {
    options.onRejected?.(reason, `${remote}: ${limitMessage(reason, limits)}`, remote);
    stream.resume();
    answer(stream, LIMIT_STATUS[reason], `remora: ${limitMessage(reason, limits)}`, { "x-remora-rejected": reason });
  }

  function refuseLate(stream: http2.ServerHttp2Stream, reason: "body_size" | "body_timeout"): void {
    options.onRejected?.(reason, `${remote}: ${limitMessage(reason, limits)}`, remote);
    if (!stream.headersSent && !stream.destroyed) {
      answer(stream, LIMIT_STATUS[reason], `remora: ${limitMessage(reason, limits)}`, { "x-remora-rejected": reason });
    }
  }
}

/**
 * HEADERS (END_STREAM when there is neither body nor trailers: gRPC's trailers-only
 * answer stays one frame), DATA with backpressure, then the trailers registered beside
 * the Response (src/core/trailers.ts).
 */
export async function writeResponse(stream: http2.ServerHttp2Stream, response: Response, isHead: boolean): Promise<void> {
  const trailers = trailersOf(response);
  const body = isHead || response.status === 204 || response.status === 304 ? null : response.body;
  if (body === null) await response.body?.cancel().catch(() => {});
  if (stream.destroyed || stream.closed) {
    await body?.cancel().catch(() => {});
    return;
  }
  const head = responseHeaders(response);
  if (body === null && trailers === undefined) {
    stream.respond(head, { endStream: true });
    return;
  }
  const sendTrailers = trailers !== undefined;
  stream.respond(head, { waitForTrailers: sendTrailers });
  if (sendTrailers) {
    stream.once("wantTrailers", () => {
      trailers.then(
        (t) => {
          if (stream.destroyed) return;
          const out = trailerFields(t);
          // An empty trailer block is legal HTTP/2 (RFC 9113 §8.1) and ends the stream.
          stream.sendTrailers(out);
        },
        () => { if (!stream.destroyed) stream.close(NGHTTP2_CANCEL); },
      );
    });
  }
  if (body === null) {
    stream.end();
    return;
  }
  const reader = body.getReader();
  const onClose = () => { reader.cancel(new Error("client reset the stream")).catch(() => {}); };
  stream.once("close", onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (stream.destroyed) return;
      if (!stream.write(value)) await drained(stream);
    }
    stream.end();
  } catch {
    // The upstream body broke midway: a reset tells the client the answer is incomplete.
    reader.cancel().catch(() => {});
    if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
  } finally {
    stream.off("close", onClose);
  }
}

// RFC 9113 §8.2.2: connection-specific fields are malformed in HTTP/2.
function responseHeaders(response: Response): http2.OutgoingHttpHeaders {
  const drop = hopByHopNames(response.headers.get("connection"));
  const out: http2.OutgoingHttpHeaders = { ":status": response.status };
  for (const [name, value] of response.headers) {
    if (drop.has(name) || name === "set-cookie") continue;
    out[name] = value;
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

function trailerFields(t: Headers): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [name, value] of t) if (!name.startsWith(":")) out[name] = value;
  return out;
}

function answer(stream: http2.ServerHttp2Stream, status: number, text: string, extra: Record<string, string> = {}): void {
  if (stream.destroyed || stream.headersSent) return;
  stream.respond({ ":status": status, "content-type": "text/plain; charset=utf-8", ...extra });
  stream.end(`${text}\n`);
}

function drained(stream: http2.ServerHttp2Stream): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      stream.off("drain", onDrain);
      stream.off("close", onClose);
      if (err) reject(err); else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("client went away"));
    stream.once("drain", onDrain);
    stream.once("close", onClose);
  });
}

/** Closes a session gracefully (GOAWAY: streams in flight finish, no new ones), for a listener that drains. */
export function drainH2Session(session: http2.Http2Session): void {
  if (!session.closed && !session.destroyed) session.close();
}
