// Inbound listeners: plain HTTP, mTLS (STRICT) and both on one port (PERMISSIVE, told
// apart by the first byte), each turning requests into web Requests for the handler.

import http from "node:http";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { RemoraError } from "../../core/errors.ts";
import type { ConnInfo, LimitReason, Listener, ServeOptions } from "../types.ts";
import { formatHostPort, parseHostPort } from "./address.ts";
import { BadRequestTarget, toWebRequest, writeWebResponse, type BodyLimits } from "./server-bridge.ts";
import { LIMIT_STATUS, limitMessage, rawRejection, resolveLimits } from "../limits.ts";
import { createTlsAcceptor, remoteOf, type TlsAcceptor } from "./tls-acceptor.ts";

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
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
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
  const acceptor: TlsAcceptor | undefined = tlsOptions
    ? createTlsAcceptor(tlsOptions, httpServer, (raw) => remotes.get(raw), (raw) => dropped.has(raw))
    : undefined;

  const permissive = tlsOptions?.mode === "PERMISSIVE";
  const listening: net.Server = permissive ? net.createServer(sniff) : (acceptor?.server ?? httpServer);
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
      if (listening === httpServer) socket.end(rawRejection("connections", limits));
      else socket.destroy();
      return;
    }
    sockets.add(socket);
    remotes.set(socket, remoteOf(socket));
    socket.once("close", () => sockets.delete(socket));
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
  // taken for plaintext HTTP. The peeked bytes go back into the socket for the real server.
  function sniff(socket: net.Socket): void {
    socket.on("error", () => {}); // the owning server adds its own handler once it takes over
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once("data", (chunk: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE_RECORD && acceptor) {
        acceptor.server.emit("connection", socket); // TLSSocket replays the buffered bytes itself
      } else {
        httpServer.emit("connection", socket);
        socket.resume();
      }
    });
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

    const info: ConnInfo = {
      remoteAddress: socket.remoteAddress ?? "",
      remotePort: socket.remotePort ?? 0,
      mtls: peerIdentity !== undefined,
      ...(peerIdentity !== undefined ? { peerIdentity } : {}),
    };

    const aborter = new AbortController();
    res.once("close", () => {
      if (!res.writableFinished) aborter.abort(new Error(`client ${info.remoteAddress}:${info.remotePort} closed the connection`));
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

/** Why a listen failed, in words (shared with the Bun and Deno adapters' native listeners). */
export function listenFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") return "address already in use";
  if (code === "EACCES") return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
  if (code === "EADDRNOTAVAIL") return "no interface on this host has that address";
  return messageOf(err);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
