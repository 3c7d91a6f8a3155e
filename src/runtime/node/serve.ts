// Inbound listeners: plain HTTP, mTLS (STRICT) and both on one port (PERMISSIVE, told
// apart by the first byte), each turning requests into web Requests for the handler.

import http from "node:http";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { RemoraError } from "../../core/errors.ts";
import type { ConnInfo, Listener, ServeOptions } from "../types.ts";
import { formatHostPort, parseHostPort } from "./address.ts";
import { BadRequestTarget, toWebRequest, writeWebResponse } from "./server-bridge.ts";
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
  let closing = false;
  let authority = options.listen;

  // One HTTP server parses requests from plaintext sockets and from the TLS acceptor's
  // secure sockets alike; the acceptor's verdict tells them apart.
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch(() => res.destroy());
  };
  const httpServer = http.createServer({ requireHostHeader: false, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, onRequest);
  const acceptor: TlsAcceptor | undefined = tlsOptions ? createTlsAcceptor(tlsOptions, httpServer, (raw) => remotes.get(raw)) : undefined;

  const permissive = tlsOptions?.mode === "PERMISSIVE";
  const listening: net.Server = permissive ? net.createServer(sniff) : (acceptor?.server ?? httpServer);
  listening.on("connection", (socket: net.Socket) => {
    // http.Server turns Nagle off for the sockets it accepts itself, not for the ones handed
    // to it; without this a small response can wait for the peer's delayed ACK (~40 ms).
    socket.setNoDelay(true);
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
      request = toWebRequest(req, verdict ? "https" : "http", authority, aborter.signal);
    } catch (err) {
      // An unsupported target form or a Host header that makes no URL.
      const reason = err instanceof BadRequestTarget ? err.message : "bad request target or Host header";
      res.writeHead(400, { "content-type": "text/plain; charset=utf-8", connection: "close" }).end(`${reason}\n`);
      return;
    }

    let response: Response;
    try {
      response = await options.handler(request, info);
    } catch {
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
