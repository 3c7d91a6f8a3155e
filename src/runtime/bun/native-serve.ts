// Plaintext listeners on Bun run on Bun.listen with remora's own HTTP/1.1 server
// (native-connection.ts): Bun's node:http fed sockets through emit("connection") runs a JS
// fallback server over node:net streams, about half as fast. With `streams`, the first
// bytes pick the protocol as in the node adapter (src/runtime/node/serve.ts); HTTP/2,
// tunnels and opaque TCP go to the shared handlers through a node:stream Duplex.

import type http2 from "node:http2";
import type net from "node:net";
import { RemoraError } from "../../core/errors.ts";
import { detectProtocol, type DetectedProtocol } from "../../core/protocol/detect.ts";
import { closingResponse } from "../../core/protocol/http1-head.ts";
import type { ConnInfo, LimitReason, Listener, ServeOptions } from "../types.ts";
import { limitMessage, rawRejection, resolveLimits } from "../limits.ts";
import { formatHostPort, parseHostPort } from "../node/address.ts";
import { acceptH2c, drainH2Session } from "../node/h2-serve.ts";
import { DEFAULT_DETECT_TIMEOUT_MS, listenFailure } from "../node/serve.ts";
import { Http1Connection, type ListenerContext } from "./native-connection.ts";
import { BunDuplex, type SocketOwner } from "./native-duplex.ts";
import { bunListen, type ListenSocket, type TcpListener } from "./native-listen.ts";

/** As the node adapter: above callers' idle timeouts, so they close idle connections first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A connection that sends nothing while its protocol is detected, with no opaque handler, is dropped after this long. */
const FIRST_BYTE_TIMEOUT_MS = 30_000;
const DEFAULT_GRACE_MS = 5_000;

type Socket = ListenSocket<SocketOwner>;

/** Owns a connection refused over the connection limit, until it closes. */
const IGNORE: SocketOwner = { onData() {}, onDrain() {}, onEnd() {}, onClose() {} };

export async function nativeServe(options: ServeOptions): Promise<Listener> {
  const { host, port } = parseHostPort(options.listen, "listen address");
  const limits = resolveLimits(options.limits);
  const streams = options.streams;
  const sockets = new Set<Socket>();
  const connections = new Set<Http1Connection>();
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
    closing: () => closing,
    reject,
    tunnel: streams?.tunnel,
  };

  const http1 = (socket: Socket): Http1Connection => {
    const conn = new Http1Connection(socket, ctx, Date.now());
    connections.add(conn);
    return conn;
  };

  let listener: TcpListener;
  try {
    listener = bunListen<SocketOwner>({
      hostname: host,
      port,
      allowHalfOpen: true,
      socket: {
        open(socket) {
          socket.setNoDelay(true);
          if (sockets.size >= limits.maxConnections) {
            socket.data = IGNORE;
            reject("connections", `${socket.remoteAddress}:${socket.remotePort}`);
            socket.write(new TextEncoder().encode(rawRejection("connections", limits)));
            socket.end();
            return;
          }
          sockets.add(socket);
          if (streams) detect(socket);
          else http1(socket);
        },
        data: (socket, chunk) => socket.data.onData(chunk),
        drain: (socket) => socket.data.onDrain(),
        end: (socket) => socket.data.onEnd(),
        close(socket, error) {
          socket.data?.onClose(error);
          if (socket.data instanceof Http1Connection) connections.delete(socket.data);
          if (sockets.delete(socket) && sockets.size === 0) allClosed?.();
        },
        error() {}, // close follows
      },
    });
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
  }, Math.max(100, Math.min(1000, Math.floor(limits.requestHeadersTimeoutMs / 4))));
  (sweep as { unref?: () => void }).unref?.();

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
    if (!streams?.opaque || closing) return void socket.terminate();
    const duplex = new BunDuplex(socket);
    duplex.pause();
    if (ended) duplex.onEnd();
    streams.opaque(duplex, head, infoOf(socket));
  }

  function toH2(socket: Socket, head: Uint8Array, ended: boolean): void {
    if (!streams?.h2) {
      // RFC 9113 §3.4: a server that does not speak h2 may just close; a sentence helps the operator.
      reject("bad_request", `${socket.remoteAddress}:${socket.remotePort}`);
      socket.data = IGNORE;
      socket.write(closingResponse(505, "HTTP Version Not Supported", "remora: HTTP/2 prior knowledge is not enabled on this listener\n"));
      socket.end();
      return;
    }
    // Bun's node:http2 reads a plain node:stream Duplex through JS (h2-serve.ts, `replaying`),
    // so the Bun socket wrapped as one serves h2c without a detour through node:net.
    const duplex = new BunDuplex(socket);
    if (ended) duplex.onEnd();
    const session = acceptH2c(duplex as unknown as net.Socket, head, options.handler, infoOf(socket), authority, limits, options.onRejected);
    if (session) {
      h2Sessions.add(session);
      session.once("close", () => h2Sessions.delete(session));
    }
  }

  let closed: Promise<void> | undefined;
  return {
    address: authority,
    port: listener.port,
    reloadTls() {},
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
        for (const session of h2Sessions) drainH2Session(session);
        if (sockets.size === 0) allClosed();
      });
      return closed;
    },
  };
}

function infoOf(socket: Socket): ConnInfo {
  return { remoteAddress: socket.remoteAddress ?? "", remotePort: socket.remotePort ?? 0, mtls: false };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
