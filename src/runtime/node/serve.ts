// Inbound listeners: plain HTTP, mTLS (STRICT) and both on one port (PERMISSIVE, told
// apart by the first byte), each turning requests into web Requests for the handler. With
// `streams`, a plaintext listener detects the protocol from the first bytes
// (src/core/protocol/detect.ts) and hands tunnels and opaque TCP to the sidecar.

import http from "node:http";
import type http2 from "node:http2";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { RemoraError } from "../../core/errors.ts";
import type { LimitReason, Listener, ListenerLimits, ServeOptions } from "../types.ts";
import { connInfo } from "../conn-info.ts";
import { formatHostPort, parseHostPort } from "./address.ts";
import { BadRequestTarget, toWebRequest, writeWebResponse, type BodyLimits } from "./server-bridge.ts";
import { LIMIT_STATUS, limitMessage, rawRejection, resolveLimits } from "../limits.ts";
import { createTlsAcceptor, remoteOf, type TlsAcceptor } from "./tls-acceptor.ts";
import { detectProtocol, type DetectedProtocol } from "../../core/protocol/detect.ts";
import { closingResponse } from "../../core/protocol/http1-head.ts";
import { toTunnelRequest } from "./tunnel-request.ts";
import { acceptH2c, drainH2Session, h2OverTls } from "./h2-serve.ts";
import { DEFAULT_DETECT_TIMEOUT_MS, listenFailure } from "../listener-common.ts";
import { verifyWithin } from "../verify-within.ts";

const TLS_HANDSHAKE_RECORD = 0x16;
/** Well above our upstream's 4 s idle timeout, so callers close idle connections first (no keep-alive race). */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A PERMISSIVE connection that sends nothing is dropped after this long. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;
const DEFAULT_GRACE_MS = 5_000;

export async function serve(options: ServeOptions): Promise<Listener> {
  const { host, port } = parseHostPort(options.listen, "listen address");
  const tlsOptions = options.tls && options.tls.mode !== "DISABLE" ? options.tls : undefined;
  const sockets = new Set<net.Socket>();
  const remotes = new WeakMap<net.Socket, string>();
  /** Raw sockets closed over the connection limit: the TLS acceptor must not report them as refused handshakes. */
  const dropped = new WeakSet<net.Socket>();
  /** Sockets already answered for a limit: Node reports a second parse error when such a socket ends. */
  const rejected = new WeakSet<net.Socket>();
  const limits = resolveLimits(options.limits);
  const reject = (reason: LimitReason, remote: string) => options.onRejected?.(reason, `${remote}: ${limitMessage(reason, limits)}`, remote);
  let closing = false;
  let authority = options.listen;

  // One HTTP server parses requests from plaintext sockets and from the TLS acceptor's
  // secure sockets alike; the acceptor's verdict tells them apart.
  /** Sniffed sockets whose first request head has not arrived yet (see firstHeadTimeout). */
  const awaitingHead = new WeakMap<net.Socket, ReturnType<typeof setTimeout>>();
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    clearTimeout(awaitingHead.get(req.socket));
    handle(req, res).catch(() => res.destroy());
  };
  const httpServer = http.createServer({
    requireHostHeader: false,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    maxHeaderSize: limits.maxRequestHeaderBytes,
    // Slowloris: headers must be complete in time. The whole-request timer stays off, so a
    // long streaming upload is bounded by the body idle timeout instead (server-bridge.ts).
    headersTimeout: limits.requestHeadersTimeoutMs,
    requestTimeout: 0,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.requestHeadersTimeoutMs / 4))),
  }, onRequest);
  // Past maxHeadersCount node:http fails the parse as a header *size* overflow; keeping it
  // above our limit lets handle() count the fields and give the precise reason.
  httpServer.maxHeadersCount = Math.max(2000, limits.maxRequestHeaders + 1);
  httpServer.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (rejected.has(socket) || !socket.writable || err.code === "ECONNRESET") return void socket.destroy();
    rejected.add(socket);
    const reason: LimitReason = err.code === "HPE_HEADER_OVERFLOW" ? "header_size" : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? "headers_timeout" : "bad_request";
    reject(reason, remoteOf(socket));
    socket.end(rawRejection(reason, limits));
    socket.destroySoon?.();
  });
  const bodyLimits: BodyLimits = { maxBytes: limits.maxRequestBodyBytes, idleMs: limits.requestBodyIdleTimeoutMs, exceeded: new WeakMap() };
  /** Live HTTP/2 sessions: a draining listener sends each a GOAWAY, or an idle h2 client would hold it open for the whole grace. */
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  const track = (session: http2.ServerHttp2Session) => {
    h2Sessions.add(session);
    session.once("close", () => h2Sessions.delete(session));
  };
  const acceptor: TlsAcceptor | undefined = tlsOptions
    ? createTlsAcceptor(
        // The headers timeout covers the verdict too (src/runtime/verify-within.ts).
        { ...tlsOptions, verifyPeer: verifyWithin(tlsOptions.verifyPeer, limits.requestHeadersTimeoutMs) },
        httpServer,
        (raw) => remotes.get(raw),
        (raw) => dropped.has(raw),
        options.streams?.h2 ? h2OverTls(options.handler, () => authority, limits, options.onRejected, track) : undefined,
      )
    : undefined;

  const permissive = tlsOptions?.mode === "PERMISSIVE";
  const streams = options.streams;
  // Detection runs on PERMISSIVE ports (TLS or not) and on plaintext ports with streams.
  const sniffing = permissive || (streams !== undefined && !tlsOptions);
  // allowHalfOpen: a tunnel passes a client's FIN on and keeps answering (src/sidecar/pipe.ts);
  // node:http copes with it, being a half-open server itself.
  const listening: net.Server = sniffing ? net.createServer({ allowHalfOpen: streams !== undefined }) : (acceptor?.server ?? httpServer);
  if (streams?.tunnel) {
    httpServer.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void tunnel("connect", req, socket, head));
    httpServer.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => void tunnel("upgrade", req, socket, head));
  }
  listening.on("connection", (socket: net.Socket) => {
    // http.Server turns Nagle off for the sockets it accepts itself, not for the ones handed
    // to it; without this a small response can wait for the peer's delayed ACK (~40 ms).
    socket.setNoDelay(true);
    // Counted here rather than with net.Server.maxConnections, which Bun and Deno ignore.
    if (sockets.size >= limits.maxConnections) {
      dropped.add(socket);
      socket.on("error", () => {});
      reject("connections", remoteOf(socket));
      // A plaintext listener can say why; on a TLS or PERMISSIVE port no HTTP can be spoken yet.
      if (!tlsOptions) socket.end(rawRejection("connections", limits));
      else socket.destroy();
      return;
    }
    sockets.add(socket);
    remotes.set(socket, remoteOf(socket));
    socket.once("close", () => sockets.delete(socket));
    if (sniffing) sniff(socket);
  });

  await new Promise<void>((resolve, reject) => {
    listening.once("error", reject);
    listening.listen({ host, port }, () => {
      listening.off("error", reject);
      resolve();
    });
  }).catch((err: unknown) => {
    throw new RemoraError("ERR_LISTEN", `cannot listen on ${options.listen}: ${listenFailure(err)}`, { cause: err });
  });
  const bound = listening.address() as net.AddressInfo;
  authority = formatHostPort(host, bound.port);
  if (listening !== httpServer) adoptListening(httpServer, listening);

  // PERMISSIVE: a TLS ClientHello starts with a handshake record (0x16); anything else is
  // plaintext. With streams, plaintext is told apart further from its first bytes. The
  // peeked bytes go back into the socket for the server that takes it.
  function sniff(socket: net.Socket): void {
    socket.on("error", () => {}); // the owning server adds its own handler once it takes over
    const detectMs = streams?.detectTimeoutMs ?? DEFAULT_DETECT_TIMEOUT_MS;
    // A port in opaque_ports: no detection, the connection is opaque at once.
    if (streams && !permissive && detectMs <= 0) return void toOpaque(socket, new Uint8Array(0));
    let seen: Uint8Array = new Uint8Array(0);
    const onData = (chunk: Buffer) => {
      seen = seen.length === 0 ? new Uint8Array(chunk) : concat(seen, chunk);
      const verdict: DetectedProtocol | "mtls" | undefined = permissive && seen[0] === TLS_HANDSHAKE_RECORD && acceptor
        ? "mtls"
        : streams ? detectProtocol(seen) : "http1";
      if (verdict === undefined) return; // a prefix of something known: read on (bounded: 24 bytes)
      socket.off("data", onData);
      socket.setTimeout(0);
      socket.pause();
      dispatch(socket, verdict, seen);
    };
    // Silence: a server-speaks-first protocol when streams can take it; otherwise a dead client.
    socket.setTimeout(streams?.opaque ? detectMs : FIRST_BYTE_TIMEOUT_MS, () => {
      socket.off("data", onData);
      socket.setTimeout(0);
      if (streams?.opaque) toOpaque(socket, seen);
      else socket.destroy();
    });
    socket.on("data", onData);
  }

  function dispatch(socket: net.Socket, verdict: DetectedProtocol | "mtls", seen: Uint8Array): void {
    if (verdict === "mtls") {
      socket.unshift(seen);
      acceptor!.server.emit("connection", socket); // TLSSocket replays the buffered bytes itself
    } else if (verdict === "http1") {
      socket.unshift(seen);
      httpServer.emit("connection", socket);
      firstHeadTimeout(socket);
      socket.resume();
    } else if (verdict === "h2") {
      toH2(socket, seen);
    } else {
      toOpaque(socket, seen);
    }
  }

  /**
   * Bun's node:http enforces headersTimeout only on sockets it accepted itself, not on ones
   * handed to it, so a sniffed connection's first request head is timed here too (a client
   * that sends "GET " and stalls is a slowloris). Whichever of the two fires first answers.
   */
  function firstHeadTimeout(socket: net.Socket): void {
    const timer = setTimeout(() => {
      if (rejected.has(socket) || socket.destroyed || !socket.writable) return;
      rejected.add(socket);
      reject("headers_timeout", remoteOf(socket));
      socket.end(rawRejection("headers_timeout", limits));
      socket.destroySoon?.();
    }, limits.requestHeadersTimeoutMs);
    awaitingHead.set(socket, timer);
    socket.once("close", () => clearTimeout(timer));
  }

  /** The socket goes to streams.opaque paused, with what detection read as `head`; without a handler it is closed. */
  function toOpaque(socket: net.Socket, head: Uint8Array): void {
    if (!streams?.opaque || closing) return void socket.destroy();
    socket.pause();
    streams.opaque(socket, head, connInfo(socket));
  }

  function toH2(socket: net.Socket, head: Uint8Array): void {
    if (!streams?.h2) {
      // RFC 9113 §3.4: a server that does not speak h2 may just close; a sentence helps the operator.
      reject("bad_request", remoteOf(socket));
      socket.end(closingResponse(505, "HTTP Version Not Supported", "remora: HTTP/2 prior knowledge is not enabled on this listener\n"));
      return;
    }
    const session = acceptH2c(socket, head, options.handler, connInfo(socket), authority, limits, options.onRejected);
    if (session) track(session);
  }

  /** HTTP/1.1 CONNECT and Upgrade: the caller's identity settled as for requests, then the socket is the handler's. */
  async function tunnel(kind: "connect" | "upgrade", req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on("error", () => {});
    clearTimeout(awaitingHead.get(socket));
    // A TLS socket inherits allowHalfOpen false from the tls.Server; a tunnel needs half-close.
    socket.allowHalfOpen = true;
    const verdict = acceptor?.verdictOf(socket);
    if (!verdict && (socket as TLSSocket).encrypted) return void socket.destroy();
    let peerIdentity: string | undefined;
    try {
      peerIdentity = verdict ? await verdict : undefined;
    } catch {
      return void socket.destroy(); // refused and reported by the acceptor
    }
    if (closing) return void socket.end(closingResponse(503, "Service Unavailable", "remora: listener is draining\n"));
    const info = connInfo(socket, peerIdentity);
    let t;
    try {
      t = toTunnelRequest(kind, req, socket, head, info, verdict ? "https" : "http", authority);
    } catch {
      reject("bad_request", remoteOf(socket));
      return void socket.end(closingResponse(400, "Bad Request", `remora: ${kind === "connect" ? "CONNECT target" : "request target"} "${req.url}" is not host:port\n`));
    }
    streams!.tunnel!(t);
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const socket = req.socket;
    const verdict = acceptor?.verdictOf(socket);
    if (!verdict && (socket as TLSSocket).encrypted) {
      socket.destroy(); // fail closed: a TLS connection we have no verdict for
      return;
    }
    let peerIdentity: string | undefined;
    if (verdict) {
      try {
        peerIdentity = await verdict;
      } catch {
        res.destroy(); // already refused and reported in secureConnection
        return;
      }
    }
    const headerCount = req.rawHeaders.length / 2;
    const length = Number(req.headers["content-length"] ?? 0);
    const early: LimitReason | undefined = headerCount > limits.maxRequestHeaders ? "header_count" : length > limits.maxRequestBodyBytes ? "body_size" : undefined;
    if (early) return answerLimit(early, req, res);

    const info = connInfo(socket, peerIdentity);

    const aborter = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) aborter.abort(new Error(`client ${info.remote} closed the connection`));
    });

    let request: Request;
    try {
      request = toWebRequest(req, verdict ? "https" : "http", authority, aborter.signal, bodyLimits);
    } catch (err) {
      // An unsupported target form or a Host header that makes no URL.
      const reason = err instanceof BadRequestTarget ? err.message : "bad request target or Host header";
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`${reason}\n`);
      return;
    }

    let response: Response;
    try {
      response = await options.handler(request, info);
      // The body passed a limit midway: whatever the handler made of the cut stream, the
      // offender learns why (unless an answer already started).
      const over = bodyLimits.exceeded.get(req);
      if (over && !res.headersSent) {
        await response.body?.cancel().catch(() => {});
        return answerLimit(over, req, res);
      }
    } catch {
      const over = bodyLimits.exceeded.get(req);
      if (over && !res.headersSent && !res.destroyed) return answerLimit(over, req, res);
      // The handler owns error reporting; here we only keep the connection honest.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "text/plain; charset=utf-8", ...(closing ? { connection: "close" } : {}) }).end("internal error\n");
      } else {
        res.destroy();
      }
      return;
    }
    try {
      await writeWebResponse(res, response, req.method === "HEAD", closing);
    } catch {
      res.destroy();
    }
    if (closing) setImmediate(closeIdle);
  }

  function answerLimit(reason: LimitReason, req: http.IncomingMessage, res: http.ServerResponse): void {
    reject(reason, remoteOf(req.socket));
    rejected.add(req.socket);
    res.writeHead(LIMIT_STATUS[reason], { "content-type": "text/plain; charset=utf-8", "x-remora-rejected": reason, connection: "close" })
      .end(`remora: ${limitMessage(reason, limits)}\n`);
  }

  function closeIdle(): void {
    httpServer.closeIdleConnections();
  }

  let closed: Promise<void> | undefined;
  return {
    address: authority,
    port: bound.port,
    reloadTls() {
      acceptor?.reload();
    },
    close(graceMs = DEFAULT_GRACE_MS) {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        const deadline = setTimeout(() => {
          httpServer.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        // net.Server calls back once every accepted connection has closed.
        listening.close(() => {
          clearTimeout(deadline);
          if (listening !== httpServer) stopAdopted(httpServer);
          resolve();
        });
        closeIdle();
        for (const session of h2Sessions) drainH2Session(session);
      });
      return closed;
    },
  };
}

/**
 * An http.Server fed sockets from another server never listens itself, but it must act as
 * if it did: Node and Deno track connections (closeIdleConnections, headersTimeout) only
 * after its "listening" event, and Deno closes every keep-alive connection after one
 * response while `server.listening` is false.
 */
function adoptListening(httpServer: http.Server, outer: net.Server): void {
  Object.defineProperty(httpServer, "listening", { get: () => outer.listening, configurable: true });
  httpServer.emit("listening");
}

function stopAdopted(httpServer: http.Server): void {
  // Clears the connection-checking interval "listening" started; the server has no socket
  // of its own, so the ERR_SERVER_NOT_RUNNING its callback gets is expected.
  httpServer.close(() => {});
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

