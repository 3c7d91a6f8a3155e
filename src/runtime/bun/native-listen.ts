// The slice of Bun.listen (raw TCP or TLS server, data as Uint8Array callbacks) the native
// HTTP/1.1 listener uses, typed here because the project does not depend on bun-types.
// Shapes follow https://bun.sh/docs/api/tcp (Bun 1.4).

import type { BunSocketBase } from "./bun-api.ts";

/** One accepted TCP connection; `data` is ours (the connection's current owner). */
export interface ListenSocket<T> extends BunSocketBase {
  data: T;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** TLS only: the client's leaf certificate (Bun shows no intermediates), `raw` absent when none was sent. */
  getPeerCertificate?(): { raw?: Uint8Array } | undefined;
  /** TLS only: the protocol ALPN picked, false when none. */
  readonly alpnProtocol?: string | false | null;
}

export interface ListenHandler<T> {
  open(socket: ListenSocket<T>): void;
  data(socket: ListenSocket<T>, data: Uint8Array): void;
  drain(socket: ListenSocket<T>): void;
  /** The peer's FIN (with allowHalfOpen the socket stays writable). */
  end(socket: ListenSocket<T>): void;
  close(socket: ListenSocket<T>, error?: Error): void;
  error(socket: ListenSocket<T>, error: Error): void;
  /**
   * TLS only: the handshake finished (`success`) or failed. `authorizationError` is the
   * chain check's verdict on the client certificate, with node:tls's X509_V_ERR_* names.
   */
  handshake?(socket: ListenSocket<T>, success: boolean, authorizationError: (Error & { code?: string }) | null): void;
}

export interface TcpListener {
  readonly port: number;
  /** Stop accepting; with `true` also close every open connection. */
  stop(closeActiveConnections?: boolean): void;
}

export interface ListenOptions<T> {
  hostname: string;
  port: number;
  /** A peer's FIN does not close our side: tunnels pass it on and keep answering (src/sidecar/pipe.ts). */
  allowHalfOpen: boolean;
  socket: ListenHandler<T>;
  /** SO_REUSEPORT: a TLS listener binds its replacement on the same port to rotate certificates (native-tls.ts). */
  reusePort?: boolean;
  tls?: ListenTlsOptions;
}

/** Bun.listen's TLS options (BoringSSL; TLS 1.2 is its minimum). */
export interface ListenTlsOptions {
  cert: string;
  key: string;
  ca: string;
  requestCert: boolean;
  rejectUnauthorized: boolean;
  /** Wire format (length-prefixed names), not an array: Bun 1.4 takes only that here. */
  ALPNProtocols?: string;
}

/** Bun.listen; throws (with `code`, e.g. EADDRINUSE) when the address cannot be bound. */
export function bunListen<T>(options: ListenOptions<T>): TcpListener {
  return (globalThis as unknown as { Bun: { listen<U>(o: ListenOptions<U>): TcpListener } }).Bun.listen(options);
}
