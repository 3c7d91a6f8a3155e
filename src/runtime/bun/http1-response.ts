// Reads one HTTP/1.1 response (RFC 9112 §4-§7): the status line and headers, then the body
// framed by the method and status, Transfer-Encoding: chunked, Content-Length, or the end
// of the connection, as a web ReadableStream.

import { hopByHopNames } from "../node/hop-by-hop.ts";
import type { ByteSocket } from "./socket.ts";

const MAX_HEAD_BYTES = 64 * 1024;
const decoder = new TextDecoder("latin1");

export class MalformedResponse extends Error {}

export interface ResponseHead {
  status: number;
  statusText: string;
  /**
   * The fields as received, name (lower-cased) and value in turn. Not a Headers: the
   * Response is given them once (toResponse), where a Headers in its init was copied.
   */
  fields: string[];
  /** How the body is delimited. */
  framing: { kind: "none" } | { kind: "length"; length: number } | { kind: "chunked" } | { kind: "close" };
  /** The connection may carry another request once the body is read. */
  keepAlive: boolean;
}

/** Bytes from the socket with the ability to read a line or up to n bytes. */
export class BufferedReader {
  private buf: Uint8Array = new Uint8Array(0);
  readonly socket: ByteSocket;
  /** True once any byte of the response arrived (a stale keep-alive connection sends none). */
  sawBytes = false;

  constructor(socket: ByteSocket) {
    this.socket = socket;
  }

  private async fill(): Promise<boolean> {
    const chunk = await this.socket.read();
    if (chunk === null) return false;
    this.append(chunk);
    return true;
  }

  private append(chunk: Uint8Array): void {
    this.sawBytes = true;
    this.buf = this.buf.byteLength === 0 ? chunk : concat(this.buf, chunk);
  }

  /** One CRLF-terminated line without its CRLF; throws at end of stream or past `limit`. */
  async line(limit = MAX_HEAD_BYTES): Promise<string> {
    let from = 0;
    for (;;) {
      const at = indexOfLf(this.buf, from);
      if (at >= 0) {
        const end = at > 0 && this.buf[at - 1] === 0x0d ? at - 1 : at;
        const text = decoder.decode(this.buf.subarray(0, end));
        this.buf = this.buf.subarray(at + 1);
        return text;
      }
      from = this.buf.byteLength;
      if (from > limit) throw new MalformedResponse("the response head is too large");
      if (!(await this.fill())) throw new EndOfStream("the connection closed before the response was complete");
    }
  }

  /** Up to `max` bytes, or null at a clean end of stream. */
  async some(max: number): Promise<Uint8Array | null> {
    if (this.buf.byteLength === 0 && !(await this.fill())) return null;
    const out = this.buf.subarray(0, Math.min(max, this.buf.byteLength));
    this.buf = this.buf.subarray(out.byteLength);
    return out;
  }

  /**
   * The head up to and including its blank line, consumed, as latin1 text; throws at end
   * of stream or past `limit`. One search and one decode for the whole head: a line at a
   * time cost an await and a decode per header.
   */
  async head(limit = MAX_HEAD_BYTES): Promise<string> {
    let from = 0;
    for (;;) {
      const end = headEnd(this.buf, from);
      if (end >= 0) {
        if (end > limit) throw new MalformedResponse("the response head is too large");
        const text = decoder.decode(this.buf.subarray(0, end));
        this.buf = this.buf.subarray(end);
        return text;
      }
      from = Math.max(0, this.buf.byteLength - 2);
      if (this.buf.byteLength > limit) throw new MalformedResponse("the response head is too large");
      // fill() inlined: one async frame and one promise fewer per response (issue 8).
      const chunk = await this.socket.read();
      if (chunk === null) throw new EndOfStream("the connection closed before the response was complete");
      this.append(chunk);
    }
  }

  /** Bytes read from the socket and not consumed yet. */
  get buffered(): number {
    return this.buf.byteLength;
  }

  /** The next `n` buffered bytes (n <= buffered), consumed. */
  take(n: number): Uint8Array {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Bytes already read past the response; a reusable connection must have none. */
  get leftover(): number {
    return this.buf.byteLength + this.socket.buffered;
  }
}

export class EndOfStream extends Error {}

export async function readHead(reader: BufferedReader, method: string): Promise<ResponseHead> {
  for (;;) {
    // Lines end in CRLF, or a bare LF (RFC 9112 §2.2 lets a recipient accept it). The head
    // is walked by offsets: splitting it made an array and two strings per line (issue 8).
    const text = await reader.head();
    let nl = text.indexOf("\n");
    const m = STATUS_LINE.exec(text.slice(0, lineEnd(text, 0, nl)));
    if (!m) throw new MalformedResponse(`the response does not start with an HTTP/1.x status line`);
    const minor = Number(m[1]);
    const status = Number(m[2]);
    const fields: string[] = [];
    // The head ends with its blank line: the fields are the lines before it.
    for (let at = nl + 1; ; at = nl + 1) {
      nl = text.indexOf("\n", at);
      const end = lineEnd(text, at, nl);
      if (end === at) break;
      const colon = text.indexOf(":", at);
      if (colon <= at || colon > end) throw new MalformedResponse(`the response has a malformed header line`);
      fields.push(text.slice(at, colon).trim().toLowerCase(), text.slice(colon + 1, end).trim());
    }
    // 1xx are interim (100 Continue, 103 Early Hints): the final response follows. 101 would
    // switch protocols, which this client never asks for.
    if (status >= 100 && status < 200) {
      if (status === 101) throw new MalformedResponse("the upstream switched protocols, which was not requested");
      continue;
    }
    return { status, statusText: m[3] ?? "", fields, framing: framing(method, status, fields), keepAlive: keepAlive(minor, fields) };
  }
}

const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: (.*))?$/;

/** Where the line from `at` to the LF at `nl` ends, its CR left out. */
function lineEnd(text: string, at: number, nl: number): number {
  return nl > at && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
}

/** Offset just past the blank line that ends a head (LF CRLF or LF LF), or -1. */
function headEnd(buf: Uint8Array, from: number): number {
  for (let at = buf.indexOf(0x0a, from); at >= 0; at = buf.indexOf(0x0a, at + 1)) {
    if (buf[at + 1] === 0x0a) return at + 2;
    if (buf[at + 1] === 0x0d && buf[at + 2] === 0x0a) return at + 3;
    if (at + 2 >= buf.byteLength) return -1;
  }
  return -1;
}

/** The field's values joined with ", " as Headers.get does, or null; `name` lower-case. */
function field(fields: readonly string[], name: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== name) continue;
    value = value === null ? fields[i + 1]! : `${value}, ${fields[i + 1]!}`;
  }
  return value;
}

function framing(method: string, status: number, fields: readonly string[]): ResponseHead["framing"] {
  if (method === "HEAD" || status === 204 || status === 304) return { kind: "none" };
  const te = field(fields, "transfer-encoding");
  if (te !== null) {
    // RFC 9112 §6.3: chunked must be the final coding; otherwise the body runs to the close.
    return CHUNKED_LAST.test(te) ? { kind: "chunked" } : { kind: "close" };
  }
  const cl = field(fields, "content-length");
  if (cl !== null) {
    if (DIGITS.test(cl)) return { kind: "length", length: Number(cl) }; // the usual single value
    const values = new Set(cl.split(",").map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || only === undefined || !DIGITS.test(only)) throw new MalformedResponse(`the response has an invalid content-length "${cl}"`);
    return { kind: "length", length: Number(only) };
  }
  return { kind: "close" };
}

function keepAlive(minor: number, fields: readonly string[]): boolean {
  const connection = field(fields, "connection");
  if (connection === null) return minor === 1;
  const tokens = connection.toLowerCase().split(",").map((t) => t.trim());
  if (tokens.includes("close")) return false;
  return minor === 1 || tokens.includes("keep-alive");
}

/**
 * The head as a web Response around `body`, hop-by-hop fields left out (RFC 9110 §7.6.1).
 * The fields go into the Response's own Headers: passed in its init they were copied, one
 * Headers more per response (issue 8). A field Headers refuses makes the response malformed.
 */
export function toResponse(head: ResponseHead, body: ReadableStream<Uint8Array> | Uint8Array<ArrayBuffer> | null): Response {
  const statusText = REASON_CHARS.test(head.statusText) ? head.statusText : "";
  const res = new Response(body, { status: head.status, statusText });
  const headers = res.headers;
  const fields = head.fields;
  const drop = hopByHopNames(field(fields, "connection"));
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (drop.has(name)) continue;
    try {
      headers.append(name, fields[i + 1]!);
    } catch {
      throw new MalformedResponse(`the response has an invalid header "${name}"`);
    }
  }
  return res;
}

const CHUNK_MAX = 64 * 1024;
const CHUNKED_LAST = /(?:^|,)\s*chunked\s*$/i;
const DIGITS = /^\d+$/;
/** RFC 9112 §4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ). */
const REASON_CHARS = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * The body as a pull stream. `done(reusable)` is called exactly once: true when the body
 * was read to its end and the connection can carry another request, false otherwise.
 */
export function bodyStream(reader: BufferedReader, head: ResponseHead, signal: AbortSignal, done: (reusable: boolean) => void): ReadableStream<Uint8Array> | null {
  let finished = false;
  let onAbort: (() => void) | undefined;
  const finish = (reusable: boolean) => {
    if (finished) return;
    finished = true;
    if (onAbort) signal.removeEventListener("abort", onAbort);
    done(reusable);
  };
  const f = head.framing;
  if (f.kind === "none" || (f.kind === "length" && f.length === 0)) {
    finish(head.keepAlive);
    return null;
  }
  let remaining = f.kind === "length" ? f.length : 0;
  let inChunk = 0;
  let last = false;

  const nextChunked = async (): Promise<Uint8Array | null> => {
    if (inChunk === 0) {
      if (last) return null;
      const sizeLine = await reader.line(1024);
      const size = Number.parseInt(sizeLine.split(";")[0]!.trim(), 16);
      if (!Number.isFinite(size) || size < 0 || !/^[0-9a-fA-F]+/.test(sizeLine.trim())) throw new MalformedResponse("the response has a malformed chunk size");
      if (size === 0) {
        // Trailers are read and dropped: web Responses have no trailers to carry them.
        while ((await reader.line()) !== "");
        last = true;
        return null;
      }
      inChunk = size;
    }
    const data = await reader.some(Math.min(inChunk, CHUNK_MAX));
    if (data === null) throw new EndOfStream("the connection closed in the middle of a chunked body");
    inChunk -= data.byteLength;
    if (inChunk === 0 && (await reader.line(2)) !== "") throw new MalformedResponse("a chunk of the response is longer than its size");
    return data;
  };

  return new ReadableStream<Uint8Array>({
    start(controller) {
      // The attempt was abandoned while the body streamed: fail the body with the reason.
      onAbort = () => {
        finish(false);
        const reason: unknown = signal.reason;
        controller.error(reason instanceof Error ? reason : new Error(String(reason)));
      };
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    },
    async pull(controller) {
      if (finished) return;
      try {
        let data: Uint8Array | null;
        if (f.kind === "length") {
          data = remaining === 0 ? null : await reader.some(Math.min(remaining, CHUNK_MAX));
          if (data === null && remaining > 0) throw new EndOfStream(`the connection closed ${remaining} bytes before the end of the response body`);
          if (data) remaining -= data.byteLength;
        } else if (f.kind === "chunked") {
          data = await nextChunked();
        } else {
          data = await reader.some(CHUNK_MAX);
        }
        if (data !== null && data.byteLength > 0) {
          // A view into a buffer the reader still holds is copied, so a consumer that
          // transfers what it gets cannot pull bytes from under the reader.
          controller.enqueue(data.byteLength === data.buffer.byteLength ? data : data.slice());
        }
        const complete = data === null || (f.kind === "length" && remaining === 0);
        if (complete) {
          finish(f.kind !== "close" && head.keepAlive && reader.leftover === 0);
          controller.close();
        }
      } catch (err) {
        if (finished) return; // aborted meanwhile: the stream already failed with the reason
        finish(false);
        controller.error(err);
      }
    },
    cancel() {
      finish(false);
    },
  }, { highWaterMark: 0 });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

function indexOfLf(buf: Uint8Array, from: number): number {
  return buf.indexOf(0x0a, from);
}
