// The slice of Bun.listen (raw TCP server, data as Uint8Array callbacks) the native
// HTTP/1.1 listener uses, typed here because the project does not depend on bun-types.
// Shapes follow https://bun.sh/docs/api/tcp (Bun 1.4).

/** One accepted TCP connection; `data` is ours (the connection's current owner). */
export interface ListenSocket<T> {
  data: T;
  /** Bytes the kernel took: fewer than given when its buffer is full (the rest waits for `drain`), -1 once closed. */
  write(data: Uint8Array): number;
  /** Half-close: a FIN after what was written. */
  end(): void;
  /** Close at once (a reset when unread bytes remain). */
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export interface ListenHandler<T> {
  open(socket: ListenSocket<T>): void;
  data(socket: ListenSocket<T>, data: Uint8Array): void;
  drain(socket: ListenSocket<T>): void;
  /** The peer's FIN (with allowHalfOpen the socket stays writable). */
  end(socket: ListenSocket<T>): void;
  close(socket: ListenSocket<T>, error?: Error): void;
  error(socket: ListenSocket<T>, error: Error): void;
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
}

/** Bun.listen; throws (with `code`, e.g. EADDRINUSE) when the address cannot be bound. */
export function bunListen<T>(options: ListenOptions<T>): TcpListener {
  return (globalThis as unknown as { Bun: { listen<U>(o: ListenOptions<U>): TcpListener } }).Bun.listen(options);
}
