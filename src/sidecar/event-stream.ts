// A live feed of what one sidecar does: every MeshEvent of the request path plus one
// record per finished request, each stamped with time and service. The admin server
// streams it as NDJSON (`GET /events`); `remora tap` and `remora demo` read it, so what
// they show is what happened. Slow readers lose events (counted), never slow the proxy.

import type { MeshEvent } from "../core/events.ts";
import type { HopRecord } from "../core/trace/span.ts";

/** One finished request, as seen by one side; the span builder reads the same fields. */
export interface RequestRecord extends HopRecord {
  type: "request";
}

export type FeedEvent = (MeshEvent | RequestRecord) & { time: string; service: string };

export interface EventHub {
  publish(e: MeshEvent | RequestRecord): void;
  /** NDJSON stream of events whose type is in `types` (all when absent), until `signal` aborts or the reader cancels. */
  subscribe(options?: { types?: ReadonlySet<string>; signal?: AbortSignal }): ReadableStream<Uint8Array>;
  readonly subscribers: number;
  /** Events dropped because a reader fell behind. */
  readonly dropped: number;
}

/** Per-reader backlog: past this, new events are dropped for that reader only. */
const MAX_BACKLOG = 1_000;

export function createEventHub(stamp: { service: string; now: () => number }): EventHub {
  const encoder = new TextEncoder();
  const readers = new Set<{ types?: ReadonlySet<string>; controller: ReadableStreamDefaultController<Uint8Array> }>();
  let dropped = 0;
  return {
    publish(e) {
      if (readers.size === 0) return;
      let line: Uint8Array | undefined;
      for (const r of readers) {
        if (r.types && !r.types.has(e.type)) continue;
        if ((r.controller.desiredSize ?? 0) <= 0) {
          dropped++;
          continue;
        }
        line ??= encoder.encode(JSON.stringify({ time: new Date(stamp.now()).toISOString(), service: stamp.service, ...e }) + "\n");
        r.controller.enqueue(line);
      }
    },
    subscribe(options = {}) {
      let reader: { types?: ReadonlySet<string>; controller: ReadableStreamDefaultController<Uint8Array> } | undefined;
      const stop = () => {
        if (!reader) return;
        readers.delete(reader);
        try {
          reader.controller.close();
        } catch {
          // already closed or cancelled by the reader
        }
        reader = undefined;
      };
      return new ReadableStream<Uint8Array>(
        {
          start(controller) {
            reader = { controller, ...(options.types ? { types: options.types } : {}) };
            readers.add(reader);
            // A first line at once, so a reader knows the stream is live before any traffic.
            controller.enqueue(encoder.encode(JSON.stringify({ time: new Date(stamp.now()).toISOString(), service: stamp.service, type: "hello" }) + "\n"));
            options.signal?.addEventListener("abort", stop, { once: true });
          },
          cancel() {
            if (reader) readers.delete(reader);
            reader = undefined;
          },
        },
        { highWaterMark: MAX_BACKLOG, size: () => 1 },
      );
    },
    get subscribers() {
      return readers.size;
    },
    get dropped() {
      return dropped;
    },
  };
}
