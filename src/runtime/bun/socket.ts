// One Bun.connect socket as a pull-based byte stream: Bun pushes data through callbacks,
// the HTTP/1.1 client pulls it with read(); writes wait for "drain" when the kernel buffer
// is full (Bun's write() takes only what fits and returns how much that was).

import type { BunSocket, BunSocketHandler } from "./bun-api.ts";

/** Bytes buffered before the socket is paused (backpressure towards the peer). */
const HIGH_WATER = 256 * 1024;
const WRITTEN: Promise<void> = Promise.resolve();

function closedWhileSending(): SocketClosed {
  return new SocketClosed("the connection closed while the request was being sent", { code: "EPIPE" });
}

export class SocketClosed extends Error {
  readonly code: string | undefined;
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(message, options);
    this.code = options?.code;
  }
}

export class ByteSocket {
  socket: BunSocket | undefined;
  /** Set once the socket ended or failed: read() drains the buffer, then returns null or throws. */
  private failure: Error | undefined;
  private ended = false;
  private queue: Uint8Array[] = [];
  private queued = 0;
  private paused = false;
  private reader: { resolve(chunk: Uint8Array | null): void; reject(err: Error): void } | undefined;
  private drainWaiter: (() => void) | undefined;
  private closeListeners: ((err: Error | undefined) => void)[] = [];
  closed = false;

  /** The Bun socket callbacks feeding this stream; `handshake` is the opener's. */
  handlers(handshake?: BunSocketHandler["handshake"]): BunSocketHandler {
    return {
      ...(handshake ? { handshake } : {}),
      data: (_s, chunk) => this.push(chunk),
      drain: () => {
        const w = this.drainWaiter;
        this.drainWaiter = undefined;
        w?.();
      },
      end: () => this.finish(undefined),
      error: (_s, err) => this.finish(new SocketClosed(err.message, { cause: err, ...(err.code ? { code: err.code } : {}) })),
      close: (_s, err) => this.finish(err ? new SocketClosed(err.message, { cause: err }) : undefined, true),
    };
  }

  /** Next chunk, or null at the peer's clean end of stream. */
  read(): Promise<Uint8Array | null> {
    const chunk = this.queue.shift();
    if (chunk) {
      this.queued -= chunk.byteLength;
      if (this.paused && this.queued < HIGH_WATER / 2) {
        this.paused = false;
        this.socket?.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => { this.reader = { resolve, reject }; });
  }

  /** Puts bytes read too far back at the front. */
  unread(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.queue.unshift(chunk);
    this.queued += chunk.byteLength;
  }

  /** Open and not ended by the peer: fit to carry another request. */
  get alive(): boolean {
    return !this.closed && !this.ended && !this.failure;
  }

  get buffered(): number {
    return this.queued;
  }

  /** Resolves once every byte is handed to the socket; rejects if it closes first. */
  write(data: Uint8Array): Promise<void> {
    if (this.closed || !this.socket || data.byteLength === 0) return this.writeRest(data, false);
    const n = this.socket.write(data);
    // The common case, all of it taken at once, makes no async frame and no promise.
    if (n === data.byteLength) return WRITTEN;
    if (n < 0) return Promise.reject(this.failure ?? closedWhileSending());
    return this.writeRest(data.subarray(n), true);
  }

  /** Writes what the socket did not take yet; `drainFirst` after a partial write. */
  private async writeRest(data: Uint8Array, drainFirst: boolean): Promise<void> {
    let rest = data;
    if (drainFirst) await new Promise<void>((resolve) => { this.drainWaiter = resolve; });
    while (rest.byteLength > 0) {
      if (this.closed || !this.socket) throw this.failure ?? closedWhileSending();
      const n = this.socket.write(rest);
      if (n < 0) throw this.failure ?? closedWhileSending();
      rest = rest.subarray(n);
      if (rest.byteLength > 0) await new Promise<void>((resolve) => { this.drainWaiter = resolve; });
    }
  }

  onClose(listener: (err: Error | undefined) => void): void {
    if (this.closed) listener(this.failure);
    else this.closeListeners.push(listener);
  }

  destroy(): void {
    if (!this.closed) this.socket?.terminate();
    this.finish(undefined, true);
  }

  private push(chunk: Uint8Array): void {
    const reader = this.reader;
    if (reader) {
      this.reader = undefined;
      reader.resolve(chunk);
      return;
    }
    this.queue.push(chunk);
    this.queued += chunk.byteLength;
    if (!this.paused && this.queued >= HIGH_WATER) {
      this.paused = true;
      this.socket?.pause();
    }
  }

  private finish(err: Error | undefined, closed = false): void {
    if (err && !this.failure && !this.ended) this.failure = err;
    this.ended = true;
    const reader = this.reader;
    this.reader = undefined;
    if (reader) {
      if (this.failure) reader.reject(this.failure);
      else reader.resolve(null);
    }
    if (closed && !this.closed) {
      this.closed = true;
      const w = this.drainWaiter;
      this.drainWaiter = undefined;
      w?.();
      for (const l of this.closeListeners.splice(0)) l(this.failure);
    }
  }
}
