// The slice of Bun's native API the Bun adapter uses, typed here because the project does
// not depend on bun-types. Names and shapes follow https://bun.sh/docs/api (Bun 1.4).

/** What every Bun socket does, whether Bun.connect opened it or Bun.listen accepted it. */
export interface BunSocketBase {
  /** Bytes the kernel took: fewer than given when its buffer is full (the rest waits for `drain`), -1 once closed. */
  write(data: Uint8Array): number;
  /** Half-close: a FIN after what was written. */
  end(): void;
  /** Close at once (a reset when unread bytes remain). */
  terminate(): void;
  pause(): void;
  resume(): void;
  setNoDelay(noDelay?: boolean): boolean;
}

/** Bun's TCP/TLS socket (Bun.connect); the TLS methods mirror node:tls. */
export interface BunSocket extends BunSocketBase {
  /** Whether this socket keeps the process alive (like node:net). */
  ref(): void;
  unref(): void;
  readonly readyState: string | number;
  getPeerCertificate(): { raw?: Uint8Array; serialNumber?: string; subjectaltname?: string } | undefined;
}

export interface BunSocketHandler {
  open?(socket: BunSocket): void;
  handshake?(socket: BunSocket, success: boolean, authorizationError: (Error & { code?: string }) | null): void;
  data?(socket: BunSocket, data: Uint8Array): void;
  drain?(socket: BunSocket): void;
  end?(socket: BunSocket): void;
  close?(socket: BunSocket, error?: Error): void;
  error?(socket: BunSocket, error: Error & { code?: string }): void;
  connectError?(socket: BunSocket, error: Error & { code?: string }): void;
}

export interface BunConnectOptions {
  hostname: string;
  port: number;
  tls?: { cert?: string; key?: string; ca?: string; rejectUnauthorized?: boolean; serverName?: string };
  socket: BunSocketHandler;
}

export interface BunApi {
  version: string;
  connect(options: BunConnectOptions): Promise<BunSocket>;
}

export function bunApi(): BunApi {
  return (globalThis as unknown as { Bun: BunApi }).Bun;
}
