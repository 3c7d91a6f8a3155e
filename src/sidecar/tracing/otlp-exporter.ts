// Sends finished spans to an OpenTelemetry collector as OTLP/HTTP JSON (POST /v1/traces).
// Batched (every flushInterval or maxBatch spans), bounded (a full queue drops new spans
// and counts them), and never in the request path: export() only queues. A failing
// collector is logged once per outage, not once per batch.

import type { Clock } from "../../core/clock.ts";
import type { Attributes, Span } from "../../core/trace/span.ts";
import type { Logger } from "../logger.ts";
import { encodeTraces } from "../../core/trace/otlp-json.ts";
import { RemoraError } from "../../core/errors.ts";

export interface OtlpExporterOptions {
  /** The collector: a base URL (http://host:4318) gets /v1/traces appended; a URL with a path is used as is. */
  endpoint: string;
  /** Resource attributes of every span sent (service.name, service.instance.id, ...). */
  resource: Attributes;
  clock: Clock;
  log: Logger;
  fetch?: typeof fetch;
  /** Longest a span waits in the queue before it is sent; default 1 s. */
  flushIntervalMs?: number;
  /** Spans per request; a queue this long is sent at once. Default 512. */
  maxBatch?: number;
  /** Spans held at most; past this new spans are dropped. Default 2048. */
  maxQueue?: number;
  /** Per export request; default 10 s. */
  timeoutMs?: number;
}

export interface SpanExporter {
  readonly url: string;
  /** Queues spans; never waits and never throws. */
  export(spans: readonly Span[]): void;
  /** Sends everything queued now; resolves when the collector answered (or failed). */
  flush(): Promise<void>;
  /** Flushes what is queued and stops the timer; later spans are dropped. */
  close(): Promise<void>;
  /** Spans handed to the collector and accepted (2xx). */
  readonly exported: number;
  /** Spans lost to a full queue, a failed export or a closed exporter. */
  readonly dropped: number;
}

/**
 * OTLP/HTTP's URL rules (OTEL_EXPORTER_OTLP_ENDPOINT vs ..._TRACES_ENDPOINT): a base URL
 * gets the signal path /v1/traces, a URL that already names a path is taken verbatim.
 */
export function tracesUrl(endpoint: string, field = "otlp_endpoint"): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new RemoraError("ERR_CONFIG_INVALID", `${field}: "${endpoint}" is not a URL; give the collector as http://host:4318.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new RemoraError("ERR_CONFIG_INVALID", `${field}: "${endpoint}" must be an http:// or https:// URL (OTLP/HTTP), e.g. http://127.0.0.1:4318.`);
  }
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/v1/traces";
  return url.toString();
}

export function createOtlpExporter(o: OtlpExporterOptions): SpanExporter {
  const url = tracesUrl(o.endpoint);
  const send = o.fetch ?? fetch;
  const flushIntervalMs = o.flushIntervalMs ?? 1000;
  const maxBatch = Math.max(1, o.maxBatch ?? 512);
  const maxQueue = Math.max(maxBatch, o.maxQueue ?? 2048);
  const timeoutMs = o.timeoutMs ?? 10_000;

  let queue: Span[] = [];
  let exported = 0;
  let dropped = 0;
  let closed = false;
  let failing = false;
  let queueFullLogged = false;
  let timer: AbortController | undefined;
  let sending: Promise<void> = Promise.resolve();

  const drop = (n: number) => {
    dropped += n;
  };

  const post = async (batch: Span[]): Promise<void> => {
    let problem: string | undefined;
    try {
      const res = await send(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(encodeTraces(batch, o.resource)),
        signal: o.clock.timeout(timeoutMs),
      });
      // Read the answer so the connection can be reused (an ExportTraceServiceResponse).
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) problem = `the collector answered HTTP ${res.status}`;
    } catch (e) {
      problem = `the collector could not be reached: ${(e as Error)?.message ?? String(e)}`;
    }
    if (problem === undefined) {
      exported += batch.length;
      queueFullLogged = false;
      if (failing) o.log.info({ collector: url }, "trace export works again");
      failing = false;
      return;
    }
    drop(batch.length);
    // Once per outage: a collector that is down would otherwise log every second.
    if (!failing) o.log.warn({ collector: url, error: problem, dropped: batch.length }, "trace export failed; spans are dropped until the collector answers");
    failing = true;
  };

  const drain = async (): Promise<void> => {
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      await post(batch);
    }
  };

  const flush = (): Promise<void> => {
    timer?.abort();
    timer = undefined;
    // One export at a time, in order; a flush waits for the one before it.
    sending = sending.then(drain);
    return sending;
  };

  const arm = () => {
    if (timer || closed) return;
    const t = new AbortController();
    timer = t;
    o.clock.sleep(flushIntervalMs, t.signal).then(
      () => {
        if (timer === t) timer = undefined;
        void flush();
      },
      () => {},
    );
  };

  return {
    url,
    export(spans) {
      if (closed) return drop(spans.length);
      for (const s of spans) {
        if (queue.length >= maxQueue) {
          drop(1);
          if (!queueFullLogged) o.log.warn({ collector: url, max_queue: maxQueue }, "trace queue full; new spans are dropped until the collector catches up");
          queueFullLogged = true;
          continue;
        }
        queue.push(s);
      }
      if (queue.length >= maxBatch) void flush();
      else if (queue.length > 0) arm();
    },
    flush,
    async close() {
      closed = true;
      await flush();
    },
    get exported() {
      return exported;
    },
    get dropped() {
      return dropped;
    },
  };
}
