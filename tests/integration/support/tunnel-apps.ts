// Apps and clients for the tunnel tests: a WebSocket echo server (node:http "upgrade" and
// RFC 6455 frames by hand), a raw WebSocket client that can name any Host (the global
// WebSocket cannot, and on loopback there is no redirection to carry `ws://echo/`), a TCP
// echo server, and a server-first "banner" server.

import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B65";

export interface TestServer {
  address: string;
  port: number;
  /** Connections (or WebSocket sessions) accepted so far. */
  sessions: number;
  close(): Promise<void>;
}

async function listen(server: net.Server, track: Set<net.Socket>): Promise<{ address: string; port: number; close(): Promise<void> }> {
  server.on("connection", (s: net.Socket) => {
    track.add(s);
    s.once("close", () => track.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as net.AddressInfo).port;
  return {
    address: `127.0.0.1:${port}`,
    port,
    close: () => new Promise<void>((ok) => {
      for (const s of track) s.destroy();
      server.close(() => ok());
    }),
  };
}

/** One frame, FIN set; masked as a client must (RFC 6455 §5.3). */
export function frame(opcode: number, payload: Uint8Array, mask: boolean): Buffer {
  const len = payload.length;
  const head = len < 126 ? Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | len])
    : len < 65536 ? Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | 126, len >> 8, len & 0xff])
    : (() => { const b = Buffer.alloc(10); b[0] = 0x80 | opcode; b[1] = (mask ? 0x80 : 0) | 127; b.writeBigUInt64BE(BigInt(len), 2); return b; })();
  if (!mask) return Buffer.concat([head, payload]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const body = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
  return Buffer.concat([head, key, body]);
}

/** Reads whole frames off a byte stream; returns [opcode, payload] for each. */
export function frameReader(onFrame: (opcode: number, payload: Buffer) => void): (chunk: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (buf.length < 2) return;
      const masked = (buf[1]! & 0x80) !== 0;
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
      const need = at + (masked ? 4 : 0) + len;
      if (buf.length < need) return;
      let payload = buf.subarray(at + (masked ? 4 : 0), need);
      if (masked) {
        const key = buf.subarray(at, at + 4);
        payload = Buffer.from(payload.map((b, i) => b ^ key[i % 4]!));
      }
      const opcode = buf[0]! & 0x0f;
      buf = buf.subarray(need);
      onFrame(opcode, Buffer.from(payload));
    }
  };
}

/** Echoes every text or binary message; answers close with close and ping with pong. Also records the last upgrade request's headers. */
export async function startWsEcho(): Promise<TestServer & { lastHeaders?: http.IncomingHttpHeaders }> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(426, { "content-type": "text/plain" }).end("websocket only\n"));
  const state: TestServer & { lastHeaders?: http.IncomingHttpHeaders } = { address: "", port: 0, sessions: 0, close: async () => {} };
  server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket) => {
    sockets.add(socket);
    state.sessions++;
    state.lastHeaders = req.headers;
    const key = req.headers["sec-websocket-key"];
    if (req.headers.upgrade?.toLowerCase() !== "websocket" || typeof key !== "string") return void socket.end("HTTP/1.1 400 Bad Request\r\n\r\n");
    const accept = createHash("sha1").update(key + WS_GUID).digest("base64");
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on("error", () => {});
    socket.on("data", frameReader((opcode, payload) => {
      if (opcode === 0x8) return void socket.end(frame(0x8, payload, false));
      if (opcode === 0x9) return void socket.write(frame(0xa, payload, false));
      if (opcode === 0x1 || opcode === 0x2) socket.write(frame(opcode, payload, false));
    }));
  });
  const l = await listen(server, sockets);
  return Object.assign(state, l);
}

export interface WsClient {
  /** The status line and headers the client got back. */
  status: number;
  headers: string;
  send(text: string): void;
  /** The next text message (rejects if the connection closes first). */
  next(timeoutMs?: number): Promise<string>;
  /** Resolves when the connection closes (after close(), or when the far side or a proxy cuts it). */
  closed: Promise<void>;
  close(): void;
}

/** Opens a WebSocket through `via` (host:port, e.g. the outbound listener) with `Host: host`. */
export function wsConnect(via: string, host: string, path = "/"): Promise<WsClient> {
  const i = via.lastIndexOf(":");
  const socket = net.connect({ host: via.slice(0, i), port: Number(via.slice(i + 1)) });
  const key = Buffer.from("remora-test-key!").toString("base64");
  const queue: string[] = [];
  const waiters: { ok: (s: string) => void; fail: (e: Error) => void }[] = [];
  let ended = false;
  const closed = new Promise<void>((ok) => socket.once("close", () => {
    ended = true;
    for (const w of waiters.splice(0)) w.fail(new Error("connection closed"));
    ok();
  }));
  socket.on("error", () => {});
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const reader = frameReader((opcode, payload) => {
      if (opcode !== 0x1) return;
      const w = waiters.shift();
      if (w) w.ok(payload.toString("utf8"));
      else queue.push(payload.toString("utf8"));
    });
    const onHead = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onHead);
      const text = head.subarray(0, end).toString("latin1");
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      socket.on("data", reader);
      if (head.length > end + 4) reader(head.subarray(end + 4));
      resolve({
        status,
        headers: text,
        send: (t) => void socket.write(frame(0x1, Buffer.from(t), true)),
        next: (timeoutMs = 10_000) => {
          const q = queue.shift();
          if (q !== undefined) return Promise.resolve(q);
          if (ended) return Promise.reject(new Error("connection closed"));
          return new Promise<string>((ok, fail) => {
            const t = setTimeout(() => fail(new Error(`no message within ${timeoutMs} ms`)), timeoutMs);
            waiters.push({ ok: (s) => (clearTimeout(t), ok(s)), fail: (e) => (clearTimeout(t), fail(e)) });
          });
        },
        closed,
        close: () => void socket.end(frame(0x8, Buffer.alloc(0), true)),
      });
    };
    socket.on("data", onHead);
    socket.once("close", () => reject(new Error(`connection closed before the upgrade answer: ${head.toString("latin1")}`)));
    socket.once("connect", () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`);
    });
  });
}

/** Echoes bytes; on the client's FIN it sends "bye" and closes its side (shows half-close). */
export async function startTcpEcho(): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const state: TestServer = { address: "", port: 0, sessions: 0, close: async () => {} };
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    state.sessions++;
    s.on("error", () => {});
    s.on("data", (c) => s.write(c));
    s.on("end", () => s.end("bye"));
  });
  return Object.assign(state, await listen(server, sockets));
}

/** A server-first toy protocol: it greets before the client says anything, then echoes lines in upper case. */
export async function startBannerServer(banner: string): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  const state: TestServer = { address: "", port: 0, sessions: 0, close: async () => {} };
  const server = net.createServer((s) => {
    state.sessions++;
    s.on("error", () => {});
    s.write(banner);
    s.on("data", (c) => s.write(c.toString("utf8").toUpperCase()));
  });
  return Object.assign(state, await listen(server, sockets));
}

/** Connects to `address`, optionally writes `send` (then half-closes with `end`), and collects what arrives until `until` matches or the far side closes. */
export function tcpExchange(address: string, o: { send?: string; end?: boolean; until?: (text: string) => boolean; timeoutMs?: number } = {}): Promise<{ text: string; closedByPeer: boolean }> {
  const i = address.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), allowHalfOpen: true });
    let text = "";
    let done = false;
    const finish = (closedByPeer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ text, closedByPeer });
    };
    const t = setTimeout(() => (done = true, s.destroy(), reject(new Error(`tcp exchange with ${address} timed out; got ${JSON.stringify(text)}`))), o.timeoutMs ?? 10_000);
    s.on("error", (e: NodeJS.ErrnoException) => {
      // A proxy that closes a connection with unread bytes makes the kernel send a reset.
      if (e.code === "ECONNRESET") return finish(true);
      if (!done) { done = true; clearTimeout(t); reject(e); }
    });
    s.on("data", (c) => {
      text += c.toString("utf8");
      if (o.until?.(text)) finish(false);
    });
    s.on("end", () => finish(true));
    s.on("close", () => finish(true));
    s.once("connect", () => {
      if (o.send !== undefined) s.write(o.send);
      if (o.end) s.end();
    });
  });
}
