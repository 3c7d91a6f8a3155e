// An HTTP/2 stream's DATA frames as a web ReadableStream, read only while the consumer
// asks, so h2 flow control pushes back on the sender. Built on 'data' with pause/resume
// rather than the async iterator: Node's iterator reports a stream that closes before its
// buffered data was read (a complete answer with trailers, consumed a little later) as a
// premature close, though the data is all there.

import type http2 from "node:http2";

export type BodyLimitReason = "body_size" | "body_timeout";

export interface H2BodyOptions {
  /** The consumer stopped reading: what to do with the stream (drop the rest, or reset it). */
  onCancel(): void;
  /** The error for a stream that closed before its END_STREAM. */
  closedEarly(): Error;
  /** Request bodies: size and idle bounds; idle time counts only while the consumer waits. */
  limits?: { maxBytes: number; idleMs: number; onLimit(reason: BodyLimitReason): void };
}

export function h2Body(stream: http2.Http2Stream, o: H2BodyOptions): ReadableStream<Uint8Array> {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let received = 0;
  let done = false;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    done = true;
    clearTimeout(idle);
    stream.off("data", onData);
    stream.off("end", onEnd);
    stream.off("close", onClose);
  };
  const cut = (reason: BodyLimitReason, message: string) => {
    stop();
    o.limits?.onLimit(reason);
    controller.error(new Error(message));
    o.onCancel();
  };
  const onData = (chunk: Buffer) => {
    clearTimeout(idle);
    received += chunk.length;
    if (o.limits && received > o.limits.maxBytes) return cut("body_size", `request body exceeds ${o.limits.maxBytes} bytes`);
    controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
    if ((controller.desiredSize ?? 0) <= 0) stream.pause();
  };
  const onEnd = () => {
    stop();
    controller.close();
  };
  const onClose = () => {
    if (done) return;
    stop();
    controller.error(o.closedEarly());
  };
  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      stream.on("data", onData);
      stream.pause();
      stream.once("end", onEnd);
      stream.once("close", onClose);
    },
    pull() {
      if (done) return;
      if (o.limits) {
        const { idleMs } = o.limits;
        clearTimeout(idle);
        idle = setTimeout(() => cut("body_timeout", `request body idle for ${idleMs} ms`), idleMs);
      }
      stream.resume();
    },
    cancel() {
      if (done) return;
      stop();
      o.onCancel();
    },
  }, { highWaterMark: 0 });
}
