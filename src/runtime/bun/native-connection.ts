// One HTTP/1.1 connection of the native Bun listener: parses request heads from the bytes
// Bun.listen hands over, streams each body to the handler as a web Request, writes the
// Response back (head and a one-chunk body in a single write), one exchange at a time so
// pipelined requests are answered in order (RFC 9112 §9.3.2).

import { Buffer } from "node:buffer";
import type { ConnInfo, Handler, LimitReason, ListenerLimits, TunnelRequest } from "../types.ts";
import { connInfo } from "../conn-info.ts";
import { rawRejection } from "../limits.ts";
import { closingResponse } from "../../core/protocol/http1-head.ts";
import { reasonPhrase } from "../../core/protocol/status-text.ts";
import { hopByHopNames } from "../node/hop-by-hop.ts";
import { chunkedDecoder, lengthDecoder, MalformedBody, type BodyDecoder } from "./native-body-decoder.ts";
import type { SocketOwner } from "./native-duplex.ts";
import { withHandOver } from "./hand-over.ts";
import { knownBytes } from "./known-body.ts";
import type { ListenSocket } from "./native-listen.ts";
import { leadingEmptyLines, parseHead, type RequestHead } from "./native-request-parser.ts";

/** Request body bytes buffered before the socket is paused (backpressure towards the client). */
const BODY_HIGH_WATER = 256 * 1024;
/** After our FIN, how long a client may keep its side open before the socket is closed outright. */
const LINGER_MS = 5_000;
const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n", "latin1");

/** What every connection of one listener shares. */
/** RFC 9112 §3.2.2: the absolute-form target a proxy client sends ("GET http://payments/charge"). */
const ABSOLUTE_FORM = /^https?:\/\//i;

export interface ListenerContext {
  handler: Handler;
  limits: ListenerLimits;
  keepAliveMs: number;
  authority(): string;
  /** "https" on an mTLS listener: the scheme of request URLs built from origin-form targets. */
  scheme: "http" | "https";
  closing(): boolean;
  reject(reason: LimitReason, remote: string): void;
  tunnel: ((t: TunnelRequest) => void) | undefined;
}

interface Exchange {
  head: RequestHead;
  decoder: BodyDecoder | undefined;
  bodyDone: boolean;
  bodyError: Error | undefined;
  queue: Uint8Array[];
  queued: number;
  received: number;
  /** A pull waiting for body bytes. */
  wake: (() => void) | undefined;
  /** Nobody reads the body any more: what still arrives is dropped. */
  discard: boolean;
  /** The handler started reading the body (a proxy forwarding it): it gets all of it, even after the answer. */
  reading: boolean;
  /** A limit or a framing error cut the body: the answer says why. */
  cut: LimitReason | undefined;
  continueSent: boolean;
  headWritten: boolean;
  responseDone: boolean;
  aborter: AbortController;
  reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
}

export class Http1Connection implements SocketOwner {
  private readonly socket: ListenSocket<SocketOwner>;
  private readonly ctx: ListenerContext;
  readonly info: ConnInfo;
  private readonly remote: string;
  private inbound: Uint8Array = new Uint8Array(0);
  private scanFrom = 0;
  /** When the head being read started (0: none started); the headers timeout counts from here. */
  private headStart = 0;
  private idleSince: number;
  private exchange: Exchange | undefined;
  private out: Uint8Array[] = [];
  private drainWaiters: { resolve(): void; reject(err: Error): void }[] = [];
  private paused = false;
  private peerEnded = false;
  /** Our side is ending: no more input is read, the socket ends once the output is flushed. */
  private ending = 0;
  private endWhenFlushed = false;
  private closed = false;
  private handedOff = false;

  /** `info` carries the caller's verified identity on an mTLS listener (native-tls.ts). */
  constructor(socket: ListenSocket<SocketOwner>, ctx: ListenerContext, now: number, info?: ConnInfo) {
    this.socket = socket;
    this.ctx = ctx;
    this.info = info ?? connInfo(socket);
    this.remote = this.info.remote;
    this.idleSince = now;
    socket.data = this;
  }

  get isClosed(): boolean {
    return this.closed || this.handedOff;
  }

  onData(chunk: Uint8Array): void {
    if (this.closed || this.ending || this.handedOff || this.exchange?.cut) return;
    this.inbound = this.inbound.length === 0 ? chunk : concat(this.inbound, chunk);
    this.pump();
  }

  onDrain(): void {
    while (this.out.length > 0) {
      const b = this.out[0]!;
      const n = this.socket.write(b);
      if (n < 0) return;
      if (n < b.length) {
        this.out[0] = b.subarray(n);
        return;
      }
      this.out.shift();
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.resolve();
    if (this.endWhenFlushed) {
      this.endWhenFlushed = false;
      this.socket.end();
    }
  }

  onEnd(): void {
    this.peerEnded = true;
    // Our FIN went out already: the exchange of FINs is complete.
    if (this.ending) return void this.socket.terminate();
    const ex = this.exchange;
    if (!ex || ex.responseDone) return this.end();
    // A client that stops sending mid-exchange has gone away, as node:http (httpAllowHalfOpen
    // off) takes it: the request is aborted and the connection closed (onClose).
    this.socket.terminate();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    const gone = new Error(`client ${this.remote} closed the connection`);
    const ex = this.exchange;
    if (ex) {
      if (!ex.responseDone) ex.aborter.abort(gone);
      if (!ex.bodyDone) this.failBody(ex, gone);
      ex.reader?.cancel(gone).catch(() => {});
    }
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w.reject(gone);
  }

  /** The listener's periodic check: headers timeout (slowloris), keep-alive timeout, lingering FIN. */
  sweep(now: number): void {
    if (this.closed || this.handedOff) return;
    if (this.ending) {
      if (now - this.ending >= LINGER_MS) this.socket.terminate();
      return;
    }
    if (this.exchange) return;
    if (this.headStart > 0) {
      if (now - this.headStart >= this.ctx.limits.requestHeadersTimeoutMs) this.refuse("headers_timeout");
    } else if (now - this.idleSince >= this.ctx.keepAliveMs) {
      this.end();
    }
  }

  /** A draining listener closes connections with no request in progress at once. */
  closeIfIdle(): void {
    if (!this.exchange && !this.closed && !this.handedOff) this.end();
  }

  private pump(): void {
    while (!this.closed && !this.ending && !this.handedOff) {
      const ex = this.exchange;
      if (ex) {
        if (ex.bodyDone || ex.cut || this.inbound.length === 0) break;
        let used: number;
        try {
          used = ex.decoder!.feed(this.inbound, (piece) => this.bodyPiece(ex, piece));
        } catch (err) {
          if (!(err instanceof MalformedBody)) throw err;
          this.cutBody(ex, "bad_request", new Error(`malformed chunked request body from ${this.remote}: ${err.message}`));
          break;
        }
        this.inbound = this.inbound.subarray(used);
        if (ex.cut) break;
        if (ex.decoder!.done) {
          ex.bodyDone = true;
          this.wakeBody(ex);
          if (ex.responseDone) this.next();
        }
        continue;
      }
      if (this.inbound.length === 0) break;
      // Empty lines alone start the headers timeout too: a client sending only CRLFs is a slowloris.
      if (this.headStart === 0) this.headStart = Date.now();
      const skip = leadingEmptyLines(this.inbound);
      if (skip > 0) this.inbound = this.inbound.subarray(skip);
      if (this.inbound.length === 0) break;
      const parsed = parseHead(this.inbound, this.ctx.limits, this.scanFrom);
      if (parsed.kind === "incomplete") {
        this.scanFrom = this.inbound.length;
        break;
      }
      this.scanFrom = 0;
      if (parsed.kind === "limit") return this.refuse(parsed.reason);
      if (parsed.kind === "bad") {
        if (parsed.message) return this.answerAndClose(400, "Bad Request", `${parsed.message}\n`);
        return this.refuse("bad_request");
      }
      this.inbound = this.inbound.subarray(parsed.head.length);
      this.headStart = 0;
      this.start(parsed.head);
    }
    // Pipelined bytes wait while an exchange runs; past the bound the client waits too.
    const ex = this.exchange;
    if (ex?.cut) return; // paused for good: the connection closes after the answer
    const backlog = ex && !ex.bodyDone ? ex.queued : this.inbound.length;
    this.setPaused(backlog > BODY_HIGH_WATER);
  }

  private start(head: RequestHead): void {
    const ctx = this.ctx;
    const isConnect = head.method === "CONNECT";
    if (isConnect || (head.upgrade && ctx.tunnel)) return this.toTunnel(head, isConnect ? "connect" : "upgrade");
    if (head.contentLength !== undefined && head.contentLength > ctx.limits.maxRequestBodyBytes) return this.refuse("body_size");

    // The checks and sentences of the node adapter's toWebRequest (src/runtime/node/server-bridge.ts).
    if (head.hosts > 1) return this.answerAndClose(400, "Bad Request", `request has ${head.hosts} Host header fields; send exactly one\n`);
    if (head.hosts === 0 && head.minor >= 1) return this.answerAndClose(400, "Bad Request", "HTTP/1.1 request has no Host header; send one naming the destination\n");
    const target = head.target;
    let url: string;
    if (ABSOLUTE_FORM.test(target)) url = target;
    else if (target.startsWith("/")) url = `${ctx.scheme}://${head.host || ctx.authority()}${target}`;
    else return this.answerAndClose(400, "Bad Request", `request target "${target}" is not supported\n`);
    const framed = head.chunked || (head.contentLength !== undefined && head.contentLength > 0);
    if (framed && (head.method === "GET" || head.method === "HEAD")) {
      return this.answerAndClose(400, "Bad Request", `a ${head.method} request with a body (Content-Length or Transfer-Encoding) cannot be forwarded; send the body with POST or drop it\n`);
    }

    const ex: Exchange = {
      head,
      decoder: head.chunked ? chunkedDecoder() : framed ? lengthDecoder(head.contentLength!) : undefined,
      bodyDone: !framed,
      bodyError: undefined,
      queue: [],
      queued: 0,
      received: 0,
      wake: undefined,
      discard: false,
      reading: false,
      cut: undefined,
      continueSent: false,
      headWritten: false,
      responseDone: false,
      aborter: new AbortController(),
      reader: undefined,
    };
    let request: Request;
    try {
      request = new Request(url, { method: head.method, body: framed ? this.bodyStream(ex) : null, signal: ex.aborter.signal, duplex: "half" } as RequestInit);
    } catch {
      return this.answerAndClose(400, "Bad Request", "bad request target or Host header\n");
    }
    // Into the Request's own Headers: a Headers passed in the init is copied, one more object
    // and every field twice (issue 8). Bun applies no Fetch header guard here (docs/runtimes.md).
    const headers = request.headers;
    const raw = head.raw;
    for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
    // Bun's Request turns a method it does not know into GET, and the Fetch standard
    // upper-cases a few: either would hand the handler another request than the one sent
    // (llhttp refuses both, so node:http answers 400 too).
    if (request.method !== head.method) return this.refuse("bad_request");
    this.exchange = ex;
    void this.run(ex, request);
  }

  private async run(ex: Exchange, request: Request): Promise<void> {
    let response: Response;
    try {
      response = await this.ctx.handler(request, this.info);
    } catch {
      if (this.closed) return;
      if (ex.cut && !ex.headWritten) return this.refuse(ex.cut);
      // The handler owns error reporting; here we only keep the connection honest.
      if (ex.headWritten) return void this.socket.terminate();
      ex.headWritten = true;
      const closing = this.ctx.closing() || ex.head.close || !ex.bodyDone;
      this.write(responseBytes(500, "Internal Server Error", "text/plain; charset=utf-8", "internal error\n", closing));
      return this.done(ex, closing);
    }
    // The body passed a limit midway: whatever the handler made of the cut stream, the
    // offender learns why (unless an answer already started).
    if (ex.cut && !ex.headWritten) {
      await response.body?.cancel().catch(() => {});
      if (!this.closed) this.refuse(ex.cut);
      return;
    }
    let closeAfter: boolean;
    try {
      closeAfter = await this.respond(ex, response);
    } catch {
      // A body that failed midway: cut the connection so the client cannot take a truncated body for a whole one.
      return void this.socket.terminate();
    }
    this.done(ex, closeAfter);
  }

  /** Writes `response`; resolves with whether the connection must close after it. */
  private async respond(ex: Exchange, response: Response): Promise<boolean> {
    const head = ex.head;
    const isHead = head.method === "HEAD";
    const status = response.status;
    // Read before `response.body`, which would build the stream this avoids.
    const known = knownBytes(response);
    const body = known === undefined ? response.body : null;
    let closeAfter = head.close || this.ctx.closing();
    let text = `HTTP/1.1 ${status} ${response.statusText || reasonPhrase(status)}\r\n`;
    let declared: string | undefined;
    let dated = false;
    // Pieces joined once: `text += \`${name}: ${value}\r\n\`` made three rope strings per field (issue 8).
    const fields: string[] = [];
    try {
      const drop = hopByHopNames(response.headers.get("connection"));
      // forEach, not for-of: the iterator makes a [name, value] array per field.
      response.headers.forEach((value, name) => {
        if (drop.has(name) || name === "set-cookie") return;
        if (name === "content-length") declared = value;
        else if (name === "date") dated = true;
        fields.push(name, ": ", value, "\r\n");
      });
      for (const cookie of response.headers.getSetCookie()) fields.push("set-cookie: ", cookie, "\r\n");
    } catch (err) {
      await body?.cancel(err).catch(() => {});
      throw err;
    }
    if (!dated) fields.push("date: ", httpDate(), "\r\n");
    text += fields.join("");

    if (known !== undefined && !isHead && status !== 204 && status !== 304 && declared !== undefined && Number(declared) === known.byteLength) {
      ex.headWritten = true;
      this.write(joinHead(text + connectionField(closeAfter, head) + "\r\n", known));
      return closeAfter;
    }
    // Any other case (a stage changed the length, a bodiless status): the general path below.
    if (known !== undefined) return this.respond(ex, new Response(isHead || status === 204 || status === 304 ? null : known, response));

    if (!body || isHead || status === 204 || status === 304) {
      await body?.cancel().catch(() => {});
      if (!isHead && status !== 204 && status !== 304 && declared === undefined) text += "content-length: 0\r\n";
      ex.headWritten = true;
      this.write(Buffer.from(text + connectionField(closeAfter, head) + "\r\n", "latin1"));
      return closeAfter;
    }
    const length = declared === undefined ? undefined : Number(declared);
    const chunked = length === undefined && head.minor >= 1;
    // An HTTP/1.0 client without a length learns where the body ends from the close (RFC 9112 §6.3).
    if (length === undefined && !chunked) closeAfter = true;
    text += (chunked ? "transfer-encoding: chunked\r\n" : "") + connectionField(closeAfter, head) + "\r\n";

    const reader = body.getReader();
    ex.reader = reader;
    try {
      if (length === undefined) {
        // Without a length the body may trickle (SSE, long-poll): the client sees the head now.
        ex.headWritten = true;
        if (!this.write(Buffer.from(text, "latin1"))) await this.drained();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          if (this.closed) return true;
          if (value.byteLength === 0) continue;
          if (!this.write(chunked ? chunkFrame(value) : value)) await this.drained();
        }
        if (chunked) this.write(LAST_CHUNK);
        return closeAfter;
      }
      let sent = 0;
      for (let first = true; ; first = false) {
        const { done, value } = await reader.read();
        if (done) break;
        if (this.closed) return true;
        sent += value.byteLength;
        if (sent > length) throw new Error(`response body longer than its content-length ${length}`);
        if (first) {
          // Head and body in one write: one syscall and one packet for the common small answer.
          ex.headWritten = true;
          const ok = this.write(joinHead(text, value));
          if (sent === length) {
            // The read after it lets the upstream connection go back to its pool.
            if (!(await reader.read()).done) reader.cancel().catch(() => {});
            return closeAfter;
          }
          if (!ok) await this.drained();
          continue;
        }
        if (!this.write(value)) await this.drained();
      }
      if (!ex.headWritten) {
        ex.headWritten = true;
        this.write(Buffer.from(text, "latin1"));
      }
      if (sent !== length) throw new Error(`response body shorter than its content-length ${length}`);
      return closeAfter;
    } catch (err) {
      reader.cancel().catch(() => {});
      throw err;
    } finally {
      ex.reader = undefined;
    }
  }

  /** The exchange's response is out: on to the next request, or close. */
  private done(ex: Exchange, closeAfter: boolean): void {
    ex.responseDone = true;
    if (this.closed) return;
    if (closeAfter || this.ctx.closing()) return this.end();
    if (!ex.bodyDone) {
      // Answered before the body ended. A body the handler is reading still goes to it whole:
      // an upstream app may answer before reading its request, and the sidecar must still
      // forward every byte it announced (a short body would leave the app's connection
      // mid-request, found by the demo). A body nobody reads is read and dropped, as node:http
      // does, so the next pipelined request starts at the right byte. Either way the next
      // request waits for the end of this body.
      if (!ex.reading) {
        ex.discard = true;
        ex.queue = [];
        ex.queued = 0;
      }
      return this.pump();
    }
    this.next();
  }

  private next(): void {
    this.exchange = undefined;
    this.idleSince = Date.now();
    if (this.ctx.closing()) return this.end();
    this.pump();
    // A client that half-closed gets answers to what it sent, then our FIN.
    if (!this.exchange && this.peerEnded) this.end();
  }

  private bodyStream(ex: Exchange): ReadableStream<Uint8Array> {
    return new ReadableStream<Uint8Array>({
      pull: (controller) => this.pull(ex, controller),
      cancel: () => {
        ex.discard = true;
        ex.queue = [];
        ex.queued = 0;
        this.pump();
      },
    }, { highWaterMark: 0 });
  }

  private pull(ex: Exchange, controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> | void {
    ex.reading = true;
    const chunk = ex.queue.shift();
    if (chunk) {
      ex.queued -= chunk.byteLength;
      if (this.paused && ex.queued < BODY_HIGH_WATER / 2) this.pump();
      return controller.enqueue(chunk);
    }
    if (ex.bodyError) return controller.error(ex.bodyError);
    if (ex.bodyDone) return controller.close();
    if (ex.head.expectContinue && !ex.continueSent && !ex.headWritten) {
      // RFC 9110 §10.1.1: the client waits for this before sending the body; sent when the handler first reads it.
      ex.continueSent = true;
      this.write(CONTINUE);
    }
    // Idle counted only while the handler waits for bytes: a slow upstream is not the client's fault.
    return new Promise<void>((resolve) => {
      const idleMs = this.ctx.limits.requestBodyIdleTimeoutMs;
      const timer = setTimeout(() => {
        ex.wake = undefined;
        this.cutBody(ex, "body_timeout", new Error(`request body idle for ${idleMs} ms`));
        resolve(this.pull(ex, controller));
      }, idleMs);
      ex.wake = () => {
        clearTimeout(timer);
        ex.wake = undefined;
        resolve(this.pull(ex, controller));
      };
    });
  }

  private bodyPiece(ex: Exchange, piece: Uint8Array): void {
    ex.received += piece.byteLength;
    if (ex.received > this.ctx.limits.maxRequestBodyBytes) {
      return this.cutBody(ex, "body_size", new Error(`request body exceeds ${this.ctx.limits.maxRequestBodyBytes} bytes`));
    }
    if (ex.discard || piece.byteLength === 0) return;
    ex.queue.push(piece);
    ex.queued += piece.byteLength;
    this.wakeBody(ex);
  }

  private cutBody(ex: Exchange, reason: LimitReason, error: Error): void {
    if (ex.cut) return;
    ex.cut = reason;
    this.failBody(ex, error);
    // The connection closes after the answer: nothing more is read from it.
    this.setPaused(true);
    // Already answered (the body was being dropped): nothing left to say, just close.
    if (ex.responseDone) {
      this.ctx.reject(reason, this.remote);
      this.end();
    }
  }

  private failBody(ex: Exchange, error: Error): void {
    if (ex.bodyDone && !ex.cut) return;
    ex.bodyDone = true;
    ex.bodyError = error;
    ex.queue = [];
    ex.queued = 0;
    this.wakeBody(ex);
  }

  private wakeBody(ex: Exchange): void {
    ex.wake?.();
  }

  private toTunnel(head: RequestHead, kind: "connect" | "upgrade"): void {
    const tunnel = this.ctx.tunnel;
    if (!tunnel) return this.answerAndClose(405, "Method Not Allowed", "remora: CONNECT is not supported on this listener\n");
    if (this.ctx.closing()) return this.answerAndClose(503, "Service Unavailable", "remora: listener is draining\n");
    const target = head.target;
    let url: string;
    if (kind === "connect") {
      // RFC 9112 §3.2.3: CONNECT names host:port (authority-form), nothing else.
      if (!/^[^/?#@\s]+:\d+$/.test(target)) {
        this.ctx.reject("bad_request", this.remote);
        return this.answerAndClose(400, "Bad Request", `remora: CONNECT target "${target}" is not host:port\n`);
      }
      url = `http://${target}/`;
    } else if (/^https?:\/\//i.test(target)) url = target;
    else url = `${this.ctx.scheme}://${head.host || this.ctx.authority()}${target.startsWith("/") ? target : `/${target}`}`;
    const headers = new Headers();
    for (let i = 0; i + 1 < head.raw.length; i += 2) headers.append(head.raw[i]!, head.raw[i + 1]!);
    let request: Request;
    try {
      // The Fetch standard forbids CONNECT as a method: it arrives as GET with kind "connect" (tunnel-request.ts).
      request = new Request(url, { method: kind === "connect" ? "GET" : head.method, headers });
      if (kind === "upgrade" && request.method !== head.method) return this.refuse("bad_request");
    } catch {
      this.ctx.reject("bad_request", this.remote);
      return this.answerAndClose(400, "Bad Request", `remora: request target "${target}" is not host:port\n`);
    }
    const rest = this.inbound;
    this.inbound = new Uint8Array(0);
    this.handedOff = true;
    this.setPaused(false);
    withHandOver(this.socket, ({ BunDuplex }) => {
      const socket = new BunDuplex(this.socket);
      socket.pause();
      if (this.peerEnded) socket.onEnd();
      tunnel({ kind, request, socket, head: new Uint8Array(rest), info: this.info });
    });
  }

  /** A limit or a malformed head: the raw answer with its reason, then close. */
  private refuse(reason: LimitReason): void {
    this.ctx.reject(reason, this.remote);
    this.write(Buffer.from(rawRejection(reason, this.ctx.limits), "utf8"));
    this.end();
  }

  private answerAndClose(status: number, reason: string, text: string): void {
    this.write(closingResponse(status, reason, text));
    this.end();
  }

  /** Our FIN once everything written is out; nothing more is read. */
  private end(): void {
    if (this.ending || this.closed || this.handedOff) return;
    this.ending = Date.now();
    this.setPaused(false); // the client's FIN must still be seen
    if (this.out.length > 0) this.endWhenFlushed = true;
    else this.socket.end();
  }

  /** False when the kernel did not take everything: wait for drained() before writing more. */
  private write(bytes: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.out.length > 0) {
      this.out.push(bytes);
      return false;
    }
    const n = this.socket.write(bytes);
    if (n >= bytes.length) return true;
    if (n < 0) return false;
    this.out.push(bytes.subarray(n));
    return false;
  }

  private drained(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`client ${this.remote} closed the connection`));
    if (this.out.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => this.drainWaiters.push({ resolve, reject }));
  }

  private setPaused(paused: boolean): void {
    if (paused === this.paused || this.closed) return;
    this.paused = paused;
    if (paused) this.socket.pause();
    else this.socket.resume();
  }
}

const LAST_CHUNK = Buffer.from("0\r\n\r\n", "latin1");

function chunkFrame(value: Uint8Array): Uint8Array {
  const size = `${value.byteLength.toString(16)}\r\n`;
  const out = Buffer.allocUnsafe(size.length + value.byteLength + 2);
  out.write(size, 0, "latin1");
  out.set(value, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

function joinHead(text: string, body: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(text.length + body.byteLength);
  out.write(text, 0, "latin1");
  out.set(body, text.length);
  return out;
}

function connectionField(closeAfter: boolean, head: RequestHead): string {
  if (closeAfter) return "connection: close\r\n";
  return head.minor === 0 ? "connection: keep-alive\r\n" : "";
}

function responseBytes(status: number, reason: string, type: string, text: string, close: boolean): Uint8Array {
  const body = Buffer.from(text, "utf8");
  return joinHead(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: ${type}\r\ncontent-length: ${body.length}\r\ndate: ${httpDate()}\r\n${close ? "connection: close\r\n" : ""}\r\n`, body);
}

let dateText = "";
let dateSecond = 0;
/** The Date field (RFC 9110 §6.6.1), formatted at most once a second. */
function httpDate(): string {
  const second = Math.floor(Date.now() / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
