// Request bodies and retries: a body up to route.retry_buffer_bytes is read once and
// replayed to every attempt; a larger one streams through once, unretried (Envoy's
// per_request_buffer_limit_bytes and retry_or_shadow_abandoned; Linkerd's 64 KiB rule).

import type { ReplayableBody } from "./replay-body.ts";

export type PreparedBody =
  | { readonly kind: "none" }
  | { readonly kind: "buffered"; readonly bytes: Uint8Array<ArrayBuffer> }
  | { readonly kind: "streamed"; readonly stream: ReadableStream<Uint8Array>; readonly reason: string }
  /** Streams at once and stays replayable while it fits (HTTP/2 and gRPC: replay-body.ts). */
  | { readonly kind: "teed"; readonly replay: ReplayableBody };

/** Whether every attempt can get the same body again. */
export function isReplayable(body: PreparedBody): boolean {
  if (body.kind === "teed") return body.replay.replayable;
  return body.kind !== "streamed";
}

/**
 * Buffers `req`'s body if it fits in `limitBytes`. A declared Content-Length above the
 * limit is not read at all; an undeclared body that outgrows the limit while being read is
 * stitched back together (buffered prefix, then the unread rest) so no byte is lost.
 */
export async function prepareBody(req: Request, limitBytes: number): Promise<PreparedBody> {
  if (req.body === null) return { kind: "none" };
  const declared = Number(req.headers.get("content-length") ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limitBytes) {
    return { kind: "streamed", stream: req.body, reason: `request body of ${declared} bytes exceeds retry_buffer_bytes (${limitBytes})` };
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
    if (total > limitBytes) {
      return { kind: "streamed", stream: resumeStream(chunks, reader), reason: `request body exceeds retry_buffer_bytes (${limitBytes}) while being read` };
    }
  }
  return { kind: "buffered", bytes: concat(chunks, total) };
}

/**
 * A Request for one attempt: same method, URL and headers, and a fresh body. A streamed
 * body can serve only one attempt; the caller must not retry after using it.
 */
export function attemptRequest(req: Request, body: PreparedBody, signal: AbortSignal): Request {
  // The Request constructor copies `headers` into its own Headers, so no copy is made here.
  const init: RequestInit & { duplex?: "half" } = { method: req.method, headers: req.headers, signal, redirect: "manual" };
  if (body.kind === "buffered") init.body = body.bytes;
  if (body.kind === "streamed" || body.kind === "teed") {
    init.body = body.kind === "teed" ? body.replay.open() : body.stream;
    init.duplex = "half";
  }
  return new Request(req.url, init);
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function resumeStream(prefix: readonly Uint8Array[], rest: ReadableStreamDefaultReader<Uint8Array>): ReadableStream<Uint8Array> {
  const queued = [...prefix];
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = queued.shift();
      if (next !== undefined) return controller.enqueue(next);
      const { done, value } = await rest.read();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel(reason) {
      return rest.cancel(reason);
    },
  });
}
