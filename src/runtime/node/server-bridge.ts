// Converts between node:http's IncomingMessage/ServerResponse and web Request/Response,
// streaming both bodies with backpressure.

import type { IncomingMessage, ServerResponse } from "node:http";
import { hopByHopNames } from "./hop-by-hop.ts";
import type { LimitReason } from "../types.ts";

export class BadRequestTarget extends Error {}

/** Request body bounds; a request that passes one is recorded in `exceeded` and its body stream errors. */
export interface BodyLimits {
  maxBytes: number;
  /** Only counted while the handler is reading: a slow upstream is not the client's fault. */
  idleMs: number;
  exceeded: WeakMap<IncomingMessage, LimitReason>;
}

/**
 * Origin-form targets ("/charge") get the Host header (or the listener's address) as
 * authority; absolute-form targets ("http://payments/charge", what `curl -x` sends to a
 * proxy) are taken as they are, and RFC 9112 §3.2.2 says they win over Host.
 */
export function toWebRequest(req: IncomingMessage, scheme: "http" | "https", fallbackAuthority: string, signal: AbortSignal, limits?: BodyLimits): Request {
  // llhttp reads a request line without a version ("GET /x") as HTTP/0.9 and still parses
  // header fields and a body after it; RFC 9112 §3 requires the version (found by fuzzing).
  if (req.httpVersionMajor < 1) throw new BadRequestTarget("request line has no HTTP version; send METHOD TARGET HTTP/1.1");
  // RFC 9112 §3.2: an HTTP/1.1 request without Host, or with more than one, gets a 400
  // (node:http runs with requireHostHeader off and keeps only the first Host line).
  const hosts = req.rawHeaders.filter((name, i) => i % 2 === 0 && name.toLowerCase() === "host").length;
  if (hosts > 1) throw new BadRequestTarget(`request has ${hosts} Host header fields; send exactly one`);
  if (hosts === 0 && req.httpVersionMinor >= 1) throw new BadRequestTarget("HTTP/1.1 request has no Host header; send one naming the destination");
  const target = req.url ?? "/";
  let url: string;
  if (/^https?:\/\//i.test(target)) url = target;
  else if (target.startsWith("/")) url = `${scheme}://${req.headers.host || fallbackAuthority}${target}`;
  else throw new BadRequestTarget(`request target "${target}" is not supported`);

  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);

  // RFC 9112 §6.3: without Transfer-Encoding or a non-zero Content-Length there is no body.
  const method = req.method ?? "GET";
  const length = req.headers["content-length"];
  const framed = req.headers["transfer-encoding"] !== undefined || (length !== undefined && length !== "0");
  // A web Request cannot carry a GET or HEAD body. Forwarding the head alone would send its
  // Content-Length with no body and leave the body unread on the client's connection (the
  // listener fuzzer found both: the upstream waits for bytes that never come, and the
  // client's next pipelined request stalls), so such a request is refused instead.
  if (framed && (method === "GET" || method === "HEAD")) {
    throw new BadRequestTarget(`a ${method} request with a body (Content-Length or Transfer-Encoding) cannot be forwarded; send the body with POST or drop it`);
  }
  const body = framed ? bodyStream(req, limits) : null;
  return new Request(url, { method, headers, body, signal, duplex: "half" } as RequestInit);
}

/** The request body as a web stream, pulled with backpressure, cut at the size and idle limits. */
function bodyStream(req: IncomingMessage, limits: BodyLimits | undefined): ReadableStream<Uint8Array> {
  const chunks = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let received = 0;
  const fail = (reason: LimitReason, controller: ReadableStreamDefaultController<Uint8Array>) => {
    limits!.exceeded.set(req, reason);
    controller.error(new Error(reason === "body_size" ? `request body exceeds ${limits!.maxBytes} bytes` : `request body idle for ${limits!.idleMs} ms`));
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const idle = limits
        ? new Promise<"idle">((resolve) => (timer = setTimeout(() => resolve("idle"), limits.idleMs)))
        : undefined;
      try {
        const next = idle ? await Promise.race([chunks.next(), idle]) : await chunks.next();
        if (next === "idle") return fail("body_timeout", controller);
        if (next.done) return controller.close();
        received += next.value.length;
        if (limits && received > limits.maxBytes) return fail("body_size", controller);
        controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.length));
      } catch (err) {
        controller.error(err);
      } finally {
        clearTimeout(timer);
      }
    },
    async cancel() {
      await chunks.return?.();
    },
  }, { highWaterMark: 0 });
}

/** A body declared this small is read whole and written with its head. */
const WHOLE_BODY_MAX = 64 * 1024;

export async function writeWebResponse(res: ServerResponse, response: Response, isHead: boolean, closeAfter: boolean): Promise<void> {
  try {
    const drop = hopByHopNames(response.headers.get("connection"));
    res.statusCode = response.status;
    if (response.statusText) res.statusMessage = response.statusText;
    for (const [name, value] of response.headers) {
      if (!drop.has(name) && name !== "set-cookie") res.setHeader(name, value);
    }
    const cookies = response.headers.getSetCookie();
    if (cookies.length > 0) res.setHeader("set-cookie", cookies);
    if (closeAfter) res.setHeader("connection", "close");
  } catch (err) {
    await response.body?.cancel(err).catch(() => {});
    throw err;
  }

  const bodiless = isHead || response.status === 204 || response.status === 304;
  const declared = bodiless ? undefined : res.getHeader("content-length");
  const length = declared === undefined ? Number.NaN : Number(declared);
  if (length >= 0 && length <= WHOLE_BODY_MAX) {
    // The common small answer: read whole, then head and body leave in one write, so one
    // packet and one TLS record instead of two (Bun's node:http sends them apart
    // otherwise), and a body that came as bytes never becomes a stream.
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch {
      return void res.destroy(); // the upstream body failed: a cut connection, never a short body
    }
    if (bytes.byteLength !== length) return void res.destroy();
    res.end(bytes);
    return;
  }

  const body = response.body;
  if (!body || bodiless) {
    await body?.cancel().catch(() => {});
    res.end();
    return;
  }
  // Without a length the body may trickle (SSE, long-poll): let the client see the head now.
  if (!res.hasHeader("content-length")) res.flushHeaders();

  const reader = body.getReader();
  const onClose = () => { if (!res.writableFinished) reader.cancel(new Error("client went away")).catch(() => {}); };
  res.once("close", onClose);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) return;
      if (!res.write(value)) await drained(res);
    }
    res.end();
  } catch {
    // Upstream body failed midway: cut the connection so the client cannot take a
    // truncated body for a whole one.
    reader.cancel().catch(() => {});
    res.destroy();
  } finally {
    res.off("close", onClose);
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      if (err) reject(err); else resolve();
    };
    const onDrain = () => done();
    const onClose = () => done(new Error("client went away"));
    res.once("drain", onDrain);
    res.once("close", onClose);
  });
}
