// Inbound listeners: plain HTTP, mTLS (STRICT) and both on one port (PERMISSIVE, told
// apart by the first byte), each turning requests into web Requests for the handler.

import http from "node:http";
import https from "node:https";
import net from "node:net";
import type { TLSSocket } from "node:tls";
import { RemoraError } from "../../core/errors.ts";
import type { ConnInfo, Listener, ServeOptions, TlsMaterial } from "../types.ts";
import { formatHostPort, parseHostPort } from "./address.ts";
import { readPeerChain } from "./peer-chain.ts";
import { BadRequestTarget, toWebRequest, writeWebResponse } from "./server-bridge.ts";

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
  // Per TLS connection: the caller's verified SPIFFE ID, settled once, so keep-alive
  // requests on the same connection are not verified again.
  const verdicts = new WeakMap<net.Socket, Promise<string>>();
  let closing = false;
  let authority = options.listen;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    handle(req, res).catch(() => res.destroy());
  };
  const httpOptions: http.ServerOptions = { requireHostHeader: false, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS };
  const plain = http.createServer(httpOptions, onRequest);
  let secure: https.Server | undefined;

  if (tlsOptions) {
    const refuse = (reason: string, remote: string) => tlsOptions.onRefused?.(reason, remote);
    // rejectUnauthorized makes OpenSSL (and Node right after it) drop a client without a
    // certificate or with one outside the bundle before any HTTP byte is read.
    secure = https.createServer({ ...httpOptions, ...contextOptions(tlsOptions.material()), requestCert: true, rejectUnauthorized: true }, onRequest);
    secure.on("secureConnection", (socket: TLSSocket) => {
      const remote = remoteOf(socket);
      // Any failure, even a synchronous one, becomes a refusal: the connection fails closed.
      const verdict = Promise.resolve(socket).then((s) => tlsOptions.verifyPeer(readPeerChain(s).chainDer));
      verdicts.set(socket, verdict);
      verdict.catch((err: unknown) => {
        socket.destroy();
        refuse(`mTLS client ${remote} refused: ${messageOf(err)}`, remote);
      });
    });
    secure.on("tlsClientError", (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      const parent = (socket as { _parent?: net.Socket })._parent;
      const remote = (parent && remotes.get(parent)) ?? remoteOf(socket);
      refuse(`mTLS handshake from ${remote} refused: ${handshakeRefusal(err, socket)}`, remote);
    });
  }

  const permissive = tlsOptions?.mode === "PERMISSIVE";
  const listening: net.Server = permissive ? net.createServer(sniff) : (secure ?? plain);
  listening.on("connection", (socket: net.Socket) => {
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

  // PERMISSIVE: a TLS ClientHello starts with a handshake record (0x16); anything else is
  // taken for plaintext HTTP. The peeked bytes go back into the socket for the real server.
  function sniff(socket: net.Socket): void {
    socket.on("error", () => {}); // the owning server adds its own handler once it takes over
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once("data", (chunk: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE_RECORD && secure) {
        secure.emit("connection", socket); // TLSSocket replays the buffered bytes itself
      } else {
        plain.emit("connection", socket);
        socket.resume();
      }
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const socket = req.socket;
    const verdict = verdicts.get(socket);
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
      mtls: verdict !== undefined,
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
    plain.closeIdleConnections();
    secure?.closeIdleConnections();
  }

  let closed: Promise<void> | undefined;
  return {
    address: authority,
    port: bound.port,
    reloadTls() {
      if (secure && tlsOptions) secure.setSecureContext(contextOptions(tlsOptions.material()));
    },
    close(graceMs = DEFAULT_GRACE_MS) {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        const deadline = setTimeout(() => {
          plain.closeAllConnections();
          secure?.closeAllConnections();
          for (const socket of sockets) socket.destroy();
        }, graceMs);
        // net.Server calls back once every accepted connection has closed.
        listening.close(() => {
          clearTimeout(deadline);
          resolve();
        });
        closeIdle();
      });
      return closed;
    },
  };
}

function contextOptions(material: TlsMaterial) {
  return { cert: material.certPem, key: material.keyPem, ca: material.bundlePem, minVersion: "TLSv1.2" as const };
}

function remoteOf(socket: net.Socket): string {
  const address = socket.remoteAddress;
  return address ? formatHostPort(address, socket.remotePort ?? 0) : "an unknown address";
}

function handshakeRefusal(err: NodeJS.ErrnoException, socket: TLSSocket): string {
  // Node verifies the client chain after OpenSSL's handshake and records why it failed
  // here; the error itself then only says the socket was closed.
  const verifyCode = (socket as { authorizationError?: string | Error }).authorizationError;
  const code = typeof verifyCode === "string" ? verifyCode : verifyCode?.message;
  if (code === "CERT_HAS_EXPIRED") return "the client certificate has expired";
  if (code) return `the client certificate does not chain to the trust bundle (${code})`;
  if (err.code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") return "the client presented no certificate";
  if (err.code === "ECONNRESET") return "the client closed the connection during the TLS handshake";
  return `the TLS handshake failed (${err.code ?? err.message})`;
}

function listenFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "EADDRINUSE") return "address already in use";
  if (code === "EACCES") return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
  if (code === "EADDRNOTAVAIL") return "no interface on this host has that address";
  return messageOf(err);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
