// A request body that streams to the first attempt as it arrives AND is kept for replay
// while it fits the retry buffer (Envoy buffers and forwards at once the same way). gRPC
// needs both: a streaming call must not wait for END_STREAM before its first message
// goes out, and a unary call answered UNAVAILABLE must be replayable onto another endpoint.

export class ReplayableBody {
  readonly #source: ReadableStreamDefaultReader<Uint8Array>;
  readonly #limit: number;
  /** While kept: every chunk so far. Once not: only the ones the current reader has yet to take. */
  #chunks: Uint8Array[] = [];
  #total = 0;
  #kept = true;
  #ended = false;
  #failure: { error: unknown } | undefined;
  #reading: Promise<void> | undefined;
  /** Only the newest reader gets bytes: an earlier attempt's upstream must not eat a retry's body. */
  #active = { generation: 0, index: 0 };

  constructor(source: ReadableStream<Uint8Array>, limitBytes: number) {
    this.#source = source.getReader();
    this.#limit = limitBytes;
  }

  /** Whether a new attempt can still get the whole body (nothing past the limit was read). */
  get replayable(): boolean {
    return this.#kept;
  }

  get reason(): string {
    return `request body exceeds retry_buffer_bytes (${this.#limit}) while streaming`;
  }

  /** A fresh stream of the whole body for one attempt; any earlier reader is cut off. */
  open(): ReadableStream<Uint8Array> {
    if (!this.#kept) throw new Error(this.reason);
    const generation = this.#active.generation + 1;
    this.#active = { generation, index: 0 };
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        for (;;) {
          const active = this.#active;
          if (active.generation !== generation) return controller.error(new Error("the request body was handed to a newer attempt"));
          if (active.index < this.#chunks.length) {
            controller.enqueue(this.#chunks[active.index++]!);
            if (!this.#kept) {
              this.#chunks = this.#chunks.slice(active.index);
              active.index = 0;
            }
            return;
          }
          if (this.#failure) return controller.error(this.#failure.error);
          if (this.#ended) return controller.close();
          await this.#readMore();
        }
      },
      // An attempt that stops reading (its upstream answered or failed) leaves the source
      // alone: a retry may still need it.
    }, { highWaterMark: 0 });
  }

  #readMore(): Promise<void> {
    this.#reading ??= this.#source.read().then(
      ({ done, value }) => {
        if (done) {
          this.#ended = true;
          return;
        }
        this.#chunks.push(value);
        this.#total += value.byteLength;
        if (this.#total > this.#limit) this.#kept = false;
      },
      (error: unknown) => {
        this.#failure = { error };
      },
    ).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }
}
