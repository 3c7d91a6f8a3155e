// Ends what a Deno.serve listener still runs when its grace period is over: handlers that
// have not answered and response bodies still streaming. Deno's shutdown() would wait for
// them forever, and its abort signal cannot be used once shutdown() has begun.

export interface Cutter {
  readonly cut: boolean;
  /** The request's own signal, also aborted when the grace period ends. */
  signal(request: AbortSignal): AbortSignal;
  /** The handler's answer, or a rejection when the grace period ends first. */
  race(pending: Promise<Response>): Promise<Response>;
  /** The response, its body made cuttable. */
  track(response: Response): Response;
  /** A 503 head whose body fails, so the client sees a broken response, never a whole one. */
  cutResponse(): Response;
  cutAll(): void;
}

export function createCutter(): Cutter {
  const expired = new AbortController();
  const streaming = new Set<TransformStreamDefaultController<Uint8Array>>();
  const reason = () => new Error("the listener closed and its grace period ended");

  return {
    get cut() {
      return expired.signal.aborted;
    },
    signal: (request) => AbortSignal.any([request, expired.signal]),
    race(pending) {
      if (expired.signal.aborted) return Promise.reject(reason());
      return new Promise<Response>((resolve, reject) => {
        const onCut = () => reject(reason());
        expired.signal.addEventListener("abort", onCut, { once: true });
        pending.then(resolve, reject).finally(() => expired.signal.removeEventListener("abort", onCut));
      });
    },
    track(response) {
      if (!response.body) return response;
      let controller!: TransformStreamDefaultController<Uint8Array>;
      const pass = new TransformStream<Uint8Array, Uint8Array>({
        start(c) {
          controller = c;
          streaming.add(c);
        },
        flush() {
          streaming.delete(controller);
        },
      });
      return new Response(response.body.pipeThrough(pass), response);
    },
    cutResponse() {
      return new Response(new ReadableStream({ start: (c) => c.error(reason()) }), { status: 503 });
    },
    cutAll() {
      expired.abort(reason());
      for (const c of streaming) c.error(reason());
      streaming.clear();
    },
  };
}
