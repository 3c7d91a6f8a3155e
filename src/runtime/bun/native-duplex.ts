// A Bun.listen socket as a node:stream Duplex, for everything the native listener hands on
// rather than serves itself: tunnels (CONNECT, Upgrade), opaque TCP and HTTP/2 (node:http2
// on Bun reads a plain Duplex through JS). Backpressure both ways, half-close kept.

import { Duplex } from "node:stream";
import type { ListenSocket } from "./native-listen.ts";

/** What the listener's socket callbacks call on whoever owns a connection now. */
export interface SocketOwner {
  onData(chunk: Uint8Array): void;
  onDrain(): void;
  onEnd(): void;
  onClose(error?: Error): void;
}

export class BunDuplex extends Duplex implements SocketOwner {
  readonly remoteAddress: string;
  readonly remotePort: number;
  private readonly socket: ListenSocket<SocketOwner>;
  /** Bytes the kernel did not take yet, and the write callback waiting for them. */
  private pending: Uint8Array | undefined;
  private pendingDone: ((err?: Error | null) => void) | undefined;
  private gone = false;

  constructor(socket: ListenSocket<SocketOwner>) {
    // Tunnels forward a FIN and keep the other direction open (src/sidecar/pipe.ts).
    super({ allowHalfOpen: true });
    this.socket = socket;
    this.remoteAddress = socket.remoteAddress;
    this.remotePort = socket.remotePort;
    socket.data = this;
  }

  /** node:net compatibility for code written against a net.Socket (h2-serve.ts). */
  setNoDelay(): this {
    return this;
  }

  setTimeout(): this {
    return this;
  }

  onData(chunk: Uint8Array): void {
    // Paused until read() asks for more: the kernel window then throttles the peer.
    if (!this.push(chunk)) this.socket.pause();
  }

  onDrain(): void {
    const rest = this.pending;
    if (!rest) return;
    const done = this.pendingDone!;
    this.pending = undefined;
    this.pendingDone = undefined;
    this._write(rest, "latin1", done);
  }

  onEnd(): void {
    this.push(null);
  }

  onClose(error?: Error): void {
    this.gone = true;
    const done = this.pendingDone;
    this.pending = undefined;
    this.pendingDone = undefined;
    done?.(new Error("connection closed"));
    if (!this.destroyed) this.destroy(error);
  }

  override _read(): void {
    if (!this.gone) this.socket.resume();
  }

  override _write(chunk: Uint8Array, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.gone) return done(new Error("connection closed"));
    const n = this.socket.write(chunk);
    if (n < 0) return done(new Error("connection closed"));
    if (n >= chunk.byteLength) return done();
    this.pending = chunk.subarray(n);
    this.pendingDone = done;
  }

  override _final(done: (err?: Error | null) => void): void {
    if (!this.gone) this.socket.end();
    done();
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    if (!this.gone) {
      this.gone = true;
      this.socket.terminate();
    }
    done(err);
  }
}
