// Plaintext and mTLS STRICT listeners on Bun run on Bun.listen with remora's own HTTP/1.1
// server (native-connection.ts): Bun's node:http fed sockets through emit("connection")
// runs a JS fallback server over node:net streams, about half as fast. With `streams`, the
// first bytes (plaintext) or ALPN (mTLS) pick the protocol as in the node adapter
// (src/runtime/node/serve.ts); HTTP/2, tunnels and opaque TCP go to the shared handlers
// through a node:stream Duplex.

import type http2 from "node:http2";
import type net from "node:net";
import type tls from "node:tls";
import { RemoraError } from "../../core/errors.ts";
import { detectProtocol, type DetectedProtocol } from "../../core/protocol/detect.ts";
import { closingResponse } from "../../core/protocol/http1-head.ts";
import type { ConnInfo, LimitReason, Listener, ServeOptions } from "../types.ts";
import { connInfo } from "../conn-info.ts";
import { verifyWithin } from "../verify-within.ts";
import { limitMessage, rawRejection, resolveLimits } from "../limits.ts";
import { formatHostPort, parseHostPort } from "../node/address.ts";
import { DEFAULT_DETECT_TIMEOUT_MS, listenFailure } from "../listener-common.ts";
import { Http1Connection, type ListenerContext } from "./native-connection.ts";
import type { SocketOwner } from "./native-duplex.ts";
import { loadedHandOver, withHandOver } from "./hand-over.ts";
import { bunListen, type ListenHandler, type ListenSocket, type TcpListener } from "./native-listen.ts";
import { AwaitingVerdict, handshakeRefusal, listenTlsOptions, Refusal, verdictOf } from "./native-tls.ts";

/** As the node adapter: above callers' idle timeouts, so they close idle connections first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A connection that sends nothing while its protocol is detected, with no opaque handler, is dropped after this long. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;
const DEFAULT_GRACE_MS = 5_000;

type Socket = ListenSocket<SocketOwner>;

/** Owns a connection refused over the connection limit, until it closes. */
const IGNORE: SocketOwner = { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };

/**
 * A plaintext listener, or an mTLS one with `tls.mode` "STRICT" (PERMISSIVE needs the node
 * adapter's first-byte split). Under mTLS no request is handled before the caller's
 * certificate and SPIFFE ID are settled; refused handshakes go to `tls.onRefused`.
 */
export async function nativeServe(options: ServeOptions): Promise<Listener> {
  const { host, port } = parseHostPort(options.listen, "listen address");
  const streams = options.streams;
  const limits = resolveLimits(options.limits);
  const tlsOptions = options.tls && options.tls.mode !== "DISABLE" ? { ...options.tls, verifyPeer: verifyWithin(options.tls.verifyPeer, limits.requestHeadersTimeoutMs) } : undefined;
  if (tlsOptions && tlsOptions.mode !== "STRICT") throw new RemoraError("ERR_LISTEN", `cannot listen on ${options.listen}: the native Bun listener serves mTLS mode STRICT only, not ${tlsOptions.mode}`);
  const sockets = new Set<Socket>();
  const connections = new Set<Http1Connection>();
  /** mTLS connections whose handshake or verdict is not in yet. */
  const awaiting = new Set<AwaitingVerdict>();
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  let closing = false;
  let authority = options.listen;
  let allClosed: (() => void) | undefined;

  const reject = (reason: LimitReason, remote: string) => options.onRejected?.(reason, `${remote}: ${limitMessage(reason, limits)}`, remote);
  const ctx: ListenerContext = {
    handler: options.handler,
    limits,
    keepAliveMs: KEEP_ALIVE_TIMEOUT_MS,
    authority: () => authority,
    scheme: tlsOptions ? "https" : "http",
    closing: () => closing,
    reject,
    tunnel: streams?.tunnel,
  };

  const http1 = (socket: Socket, info?: ConnInfo): Http1Connection => {
    const conn = new Http1Connection(socket, ctx, Date.now(), info);
    connections.add(conn);
    return conn;
  };

  const handlers: ListenHandler<SocketOwner> = {
    open(socket) {
      socket.setNoDelay(true);
      if (sockets.size >= limits.maxConnections) {
        socket.data = IGNORE;
        reject("connections", formatHostPort(socket.remoteAddress ?? "", socket.remotePort ?? 0));
        // A plaintext listener can say why; on a TLS port no HTTP can be spoken yet.
        if (tlsOptions) return socket.terminate();
        socket.write(new TextEncoder().encode(rawRejection("connections", limits)));
        socket.end();
        return;
      }
      sockets.add(socket);
      if (tlsOptions) awaiting.add(new AwaitingVerdict(socket, Date.now()));
      else if (streams) detect(socket);
      else http1(socket);
    },
    data: (socket, chunk) => socket.data.onData(chunk),
    drain: (socket) => socket.data.onDrain(),
    end: (socket) => socket.data.onEnd(),
    close(socket, error) {
      socket.data?.onClose(error);
      if (socket.data instanceof Http1Connection) connections.delete(socket.data);
      else if (socket.data instanceof AwaitingVerdict) awaiting.delete(socket.data);
      if (sockets.delete(socket) && sockets.size === 0) allClosed?.();
    },
    error() {}, // close follows
    ...(tlsOptions ? { handshake } : {}),
  };

  const listen = (onPort: number): TcpListener => bunListen<SocketOwner>({
    hostname: host,
    port: onPort,
    allowHalfOpen: true,
    socket: handlers,
    // Rotation binds the replacement beside the old listener (reloadTls below).
    ...(tlsOptions ? { reusePort: true, tls: listenTlsOptions(tlsOptions, streams?.h2 === true) } : {}),
  });

  let listener: TcpListener;
  try {
    listener = tlsOptions ? listen(exclusivePort(host, port)) : listen(port);
  } catch (err) {
    throw new RemoraError("ERR_LISTEN", `cannot listen on ${options.listen}: ${listenFailure(err)}`, { cause: err });
  }
  authority = formatHostPort(host, listener.port);

  // One sweep for every connection's headers and keep-alive timeouts instead of timers per
  // request; node:http checks the same way (connectionsCheckingInterval).
  const sweep = setInterval(() => {
    const now = Date.now();
    for (const conn of connections) {
      if (conn.isClosed) connections.delete(conn);
      else conn.sweep(now);
    }
    // The headers timeout covers the TLS handshake too: a client that connects and stalls
    // there holds a connection as surely as a slow head (node:tls has handshakeTimeout).
    for (const waiting of awaiting) {
      if (now - waiting.since < limits.requestHeadersTimeoutMs) continue;
      awaiting.delete(waiting);
      if (waiting.closed || waiting.settled) continue;
      waiting.terminate();
      refused(waiting.remote, new Refusal(`the client did not complete the TLS handshake within ${limits.requestHeadersTimeoutMs} ms`, "handshake"));
    }
  }, Math.max(100, Math.min(1000, Math.floor(limits.requestHeadersTimeoutMs / 4))));
  (sweep as { unref?: () => void }).unref?.();

  function refused(remote: string, refusal: Refusal): void {
    tlsOptions?.onRefused?.(`mTLS client ${remote} refused: ${refusal.message}`, remote, refusal.kind);
  }

  /** Bun's TLS handshake finished or failed: the caller's verdict decides who gets the connection. */
  function handshake(socket: Socket, success: boolean, authorizationError: (Error & { code?: string }) | null): void {
    const waiting = socket.data;
    // Not waiting: refused over the connection limit. Settled: closed by us mid-handshake.
    if (!(waiting instanceof AwaitingVerdict) || waiting.settled) return;
    waiting.settled = true;
    if (!success) {
      awaiting.delete(waiting);
      socket.terminate();
      return refused(waiting.remote, handshakeRefusal(authorizationError));
    }
    // Any failure, even a synchronous one, becomes a refusal: the connection fails closed.
    verdictOf(socket, authorizationError, tlsOptions!).then((peerIdentity) => {
      awaiting.delete(waiting);
      if (waiting.closed) return;
      const info = connInfo(socket, peerIdentity);
      if (streams?.h2 && socket.alpnProtocol === "h2") return overTls(socket, waiting, peerIdentity);
      waiting.handOver(http1(socket, info));
    }, (err: unknown) => {
      awaiting.delete(waiting);
      socket.terminate();
      refused(waiting.remote, err instanceof Refusal ? err : new Refusal(err instanceof Error ? err.message : String(err), "handshake"));
    });
  }

  /** ALPN "h2": Bun's node:http2 reads the decrypted bytes through a Duplex, as for h2c. */
  function overTls(socket: Socket, waiting: AwaitingVerdict, peerIdentity: string | undefined): void {
    withHandOver(socket, ({ BunDuplex, h2 }) => {
      const duplex = new BunDuplex(socket);
      waiting.handOver(duplex);
      const serveH2 = h2.h2OverTls(options.handler, () => authority, limits, options.onRejected, (session) => {
        h2Sessions.add(session);
        session.once("close", () => h2Sessions.delete(session));
        if (closing) h2.drainH2Session(session);
      });
      serveH2(duplex as unknown as tls.TLSSocket, Promise.resolve(peerIdentity));
    });
  }

  /** Reads the first bytes and hands the connection to whoever speaks its protocol (docs/protocols.md). */
  function detect(socket: Socket): void {
    const detectMs = streams!.detectTimeoutMs ?? DEFAULT_DETECT_TIMEOUT_MS;
    // A port in opaque_ports: no detection, the connection is opaque at once.
    if (detectMs <= 0) return toOpaque(socket, new Uint8Array(0), false);
    let seen: Uint8Array = new Uint8Array(0);
    let ended = false;
    // Silence: a server-speaks-first protocol when streams can take it; otherwise a dead client.
    const timer = setTimeout(() => {
      if (streams!.opaque) toOpaque(socket, seen, ended);
      else socket.terminate();
    }, streams!.opaque ? detectMs : FIRST_BYTE_TIMEOUT_MS);
    socket.data = {
      onData(chunk) {
        seen = seen.length === 0 ? chunk : concat(seen, chunk);
        const verdict = detectProtocol(seen);
        if (verdict === undefined) return; // a prefix of something known: read on (bounded: 24 bytes)
        clearTimeout(timer);
        dispatch(socket, verdict, seen, ended);
      },
      onDrain() {},
      onEnd() {
        ended = true;
        if (!streams!.opaque) {
          clearTimeout(timer);
          socket.terminate();
        }
      },
      onClose() {
        clearTimeout(timer);
      },
    };
  }

  function dispatch(socket: Socket, verdict: DetectedProtocol, seen: Uint8Array, ended: boolean): void {
    if (verdict === "http1") {
      const conn = http1(socket);
      conn.onData(seen);
      if (ended) conn.onEnd();
    } else if (verdict === "h2") {
      toH2(socket, seen, ended);
    } else {
      toOpaque(socket, seen, ended);
    }
  }

  /** The socket goes to streams.opaque paused, with what detection read as `head`; without a handler it is closed. */
  function toOpaque(socket: Socket, head: Uint8Array, ended: boolean): void {
    const opaque = streams?.opaque;
    if (!opaque || closing) return void socket.terminate();
    withHandOver(socket, ({ BunDuplex }) => {
      const duplex = new BunDuplex(socket);
      duplex.pause();
      if (ended) duplex.onEnd();
      opaque(duplex, head, connInfo(socket));
    });
  }

  function toH2(socket: Socket, head: Uint8Array, ended: boolean): void {
    if (!streams?.h2) {
      // RFC 9113 §3.4: a server that does not speak h2 may just close; a sentence helps the operator.
      reject("bad_request", formatHostPort(socket.remoteAddress ?? "", socket.remotePort ?? 0));
      socket.data = IGNORE;
      socket.write(closingResponse(505, "HTTP Version Not Supported", "remora: HTTP/2 prior knowledge is not enabled on this listener\n"));
      socket.end();
      return;
    }
    // Bun's node:http2 reads a plain node:stream Duplex through JS (h2-serve.ts, `replaying`),
    // so the Bun socket wrapped as one serves h2c without a detour through node:net.
    withHandOver(socket, ({ BunDuplex, h2 }) => {
      const duplex = new BunDuplex(socket);
      if (ended) duplex.onEnd();
      const session = h2.acceptH2c(duplex as unknown as net.Socket, head, options.handler, connInfo(socket), authority, limits, options.onRejected);
      if (session) {
        h2Sessions.add(session);
        session.once("close", () => h2Sessions.delete(session));
      }
    });
  }

  let closed: Promise<void> | undefined;
  return {
    address: authority,
    port: listener.port,
    /**
     * listener.reload() keeps the certificate it started with, so a new listener with the
     * new material binds beside this one (SO_REUSEPORT) and the old one stops accepting;
     * its live connections keep their TLS session until they end.
     */
    reloadTls() {
      if (!tlsOptions || closing) return;
      let next: TcpListener;
      try {
        next = listen(listener.port);
      } catch (err) {
        throw new RemoraError("ERR_LISTEN", `cannot reload the TLS certificate of ${authority}: ${listenFailure(err)}`, { cause: err });
      }
      const old = listener;
      listener = next;
      old.stop(false);
    },
    close(graceMs = DEFAULT_GRACE_MS) {
      closed ??= new Promise<void>((resolve) => {
        closing = true;
        listener.stop(false);
        const deadline = setTimeout(() => {
          for (const socket of sockets) socket.terminate();
        }, graceMs);
        allClosed = () => {
          clearTimeout(deadline);
          clearInterval(sweep);
          resolve();
        };
        // In-flight requests finish with `connection: close` (native-connection.ts); idle connections close now.
        for (const conn of connections) conn.closeIfIdle();
        for (const waiting of awaiting) waiting.terminate();
        const h2 = loadedHandOver()?.h2;
        if (h2) for (const session of h2Sessions) h2.drainH2Session(session);
        if (sockets.size === 0) allClosed();
      });
      return closed;
    },
  };
}

/**
 * With SO_REUSEPORT a bind beside another live listener of the same uid succeeds and the
 * two share the connections, so a second sidecar on a taken port would not fail. A plain
 * bind first keeps EADDRINUSE (it fails beside any listener, SO_REUSEPORT or not), and
 * picks the port when 0 was asked for.
 */
function exclusivePort(hostname: string, port: number): number {
  const probe = bunListen<SocketOwner>({ hostname, port, allowHalfOpen: false, socket: { open: (s) => s.terminate(), data() {}, drain() {}, end() {}, close() {}, error() {} } });
  const bound = probe.port;
  probe.stop(true);
  return bound;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
