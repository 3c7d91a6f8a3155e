// One keep-alive HTTP/1.1 client connection on a raw socket for the load generator: a
// fixed request written as one buffer, the response framed by Content-Length or chunked
// encoding. Much cheaper per request than node:http, so the generator is rarely the limit.

import net from "node:net";

export interface Completion {
  status: number;
  /** An error kind instead of a status: "reset", "closed", "timeout", "connect", "parse". */
  error?: string;
}

type State = "head" | "body" | "chunk-size" | "chunk-data" | "trailer";

const CRLF = Buffer.from("\r\n");
const HEAD_END = Buffer.from("\r\n\r\n");

export class HttpConnection {
  readonly #address: { host: string; port: number };
  readonly #request: Buffer;
  #socket: net.Socket | undefined;
  #buf: Buffer = Buffer.alloc(0);
  #state: State = "head";
  #status = 0;
  #remaining = 0;
  #closeAfter = false;
  #pending: ((c: Completion) => void) | undefined;
  /** Connections opened over this object's life (1 + reconnects). */
  opened = 0;

  constructor(address: string, request: Buffer) {
    const i = address.lastIndexOf(":");
    this.#address = { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
    this.#request = request;
  }

  get busy(): boolean {
    return this.#pending !== undefined;
  }

  /** Sends the request; `done` is called exactly once. */
  send(done: (c: Completion) => void): void {
    this.#pending = done;
    this.#reset();
    this.#ensureSocket().write(this.#request);
  }

  /** Fails the in-flight request (its deadline passed) and drops the connection. */
  abort(kind: string): void {
    this.#drop();
    this.#finish({ status: 0, error: kind });
  }

  close(): void {
    this.#drop();
  }

  #ensureSocket(): net.Socket {
    if (this.#socket && !this.#socket.destroyed) return this.#socket;
    this.opened++;
    const socket = net.connect({ ...this.#address, noDelay: true });
    socket.on("data", (chunk: Buffer) => this.#onData(socket, chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => {
      if (this.#socket !== socket) return;
      const kind = err.code === "ECONNREFUSED" ? "connect" : err.code === "ECONNRESET" || err.code === "EPIPE" ? "reset" : (err.code ?? "error");
      // Drop first: the completion may send the next request, on a fresh socket.
      this.#drop();
      this.#finish({ status: 0, error: kind });
    });
    socket.on("close", () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#finish({ status: 0, error: "closed" });
    });
    this.#socket = socket;
    return socket;
  }

  #drop(): void {
    const s = this.#socket;
    this.#socket = undefined;
    s?.destroy();
  }

  #reset(): void {
    this.#buf = Buffer.alloc(0);
    this.#state = "head";
    this.#status = 0;
    this.#remaining = 0;
    this.#closeAfter = false;
  }

  #finish(c: Completion): void {
    const done = this.#pending;
    this.#pending = undefined;
    done?.(c);
  }

  #onData(socket: net.Socket, chunk: Buffer): void {
    if (this.#socket !== socket || !this.#pending) return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    try {
      if (this.#parse()) {
        const status = this.#status;
        if (this.#closeAfter) this.#drop();
        this.#finish({ status });
      }
    } catch {
      this.#drop();
      this.#finish({ status: 0, error: "parse" });
    }
  }

  /** Consumes buffered bytes; true once the whole response is in. */
  #parse(): boolean {
    for (;;) {
      switch (this.#state) {
        case "head": {
          const end = this.#buf.indexOf(HEAD_END);
          if (end < 0) return false;
          const head = this.#buf.toString("latin1", 0, end);
          this.#buf = this.#buf.subarray(end + 4);
          const lines = head.split("\r\n");
          this.#status = Number(lines[0]!.slice(9, 12));
          let length = -1;
          let chunked = false;
          for (let i = 1; i < lines.length; i++) {
            const line = lines[i]!;
            const colon = line.indexOf(":");
            const name = line.slice(0, colon).toLowerCase();
            const value = line.slice(colon + 1).trim().toLowerCase();
            if (name === "content-length") length = Number(value);
            else if (name === "transfer-encoding") chunked = value.includes("chunked");
            else if (name === "connection") this.#closeAfter = value.includes("close");
          }
          if (this.#status === 204 || this.#status === 304) return true;
          if (chunked) this.#state = "chunk-size";
          else if (length >= 0) {
            this.#state = "body";
            this.#remaining = length;
          } else throw new Error("response without length");
          break;
        }
        case "body": {
          const take = Math.min(this.#remaining, this.#buf.length);
          this.#remaining -= take;
          this.#buf = this.#buf.subarray(take);
          return this.#remaining === 0;
        }
        case "chunk-size": {
          const end = this.#buf.indexOf(CRLF);
          if (end < 0) return false;
          const size = parseInt(this.#buf.toString("latin1", 0, end), 16);
          if (Number.isNaN(size)) throw new Error("bad chunk size");
          this.#buf = this.#buf.subarray(end + 2);
          if (size === 0) this.#state = "trailer";
          else {
            this.#state = "chunk-data";
            this.#remaining = size + 2; // data + CRLF
          }
          break;
        }
        case "chunk-data": {
          const take = Math.min(this.#remaining, this.#buf.length);
          this.#remaining -= take;
          this.#buf = this.#buf.subarray(take);
          if (this.#remaining > 0) return false;
          this.#state = "chunk-size";
          break;
        }
        case "trailer": {
          const end = this.#buf.indexOf(CRLF);
          if (end < 0) return false;
          this.#buf = this.#buf.subarray(end + 2);
          if (end === 0) return true; // the empty line that ends the trailer section
          break;
        }
      }
    }
  }
}

/** The one request every connection sends, with a Host header naming the destination. */
export function requestBytes(host: string, path: string, method = "GET", body = ""): Buffer {
  const length = body === "" ? "" : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`;
  return Buffer.from(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: remora-bench\r\n${length}\r\n${body}`, "latin1");
}
