// A sidecar's tracing: each attempt gets its own span id on the wire (so the callee's span
// hangs under the attempt that reached it), what each request did is collected until it
// finishes, and finished requests become spans for the OTLP exporter.

import type { Clock } from "../../core/clock.ts";
import type { MeshEvent } from "../../core/events.ts";
import type { Upstream } from "../../core/upstream.ts";
import type { Logger } from "../logger.ts";
import type { EventHub, RequestRecord } from "../event-stream.ts";
import { UpstreamError } from "../../core/upstream.ts";
import { formatTraceparent, parseTraceparent, randomId, type RandomBytes } from "../../core/trace/traceparent.ts";
import { inboundSpan, outboundSpans, type AttemptObservation, type Attributes, type TimedEvent } from "../../core/trace/span.ts";
import { createOtlpExporter, type SpanExporter } from "./otlp-exporter.ts";
import { forwardRequest } from "../../core/forward-request.ts";

export interface TracingSettings {
  /** OTLP/HTTP collector, e.g. http://127.0.0.1:4318 (spans go to <url>/v1/traces). */
  otlpEndpoint: string;
}

export interface TracingDeps {
  clock: Clock;
  log: Logger;
  /** service.name of every span. */
  service: string;
  /** More resource attributes (service.instance.id, ...). */
  resource?: Attributes;
  fetch?: typeof fetch;
  randomBytes?: RandomBytes;
  /** Replaces the OTLP exporter (tests, embedding). */
  exporter?: SpanExporter;
}

export interface Tracing {
  readonly exporter: SpanExporter;
  /** The outbound Upstream with a child span per attempt. */
  wrapSend(send: Upstream): Upstream;
  /** Every MeshEvent and RequestRecord the sidecar publishes. */
  observe(e: MeshEvent | RequestRecord): void;
  close(): Promise<void>;
}

interface Pending {
  attempts: AttemptObservation[];
  events: TimedEvent[];
}

/** Requests whose record never came (should not happen) are forgotten past this many. */
const MAX_PENDING = 10_000;

export function createTracing(settings: TracingSettings, deps: TracingDeps): Tracing {
  const { clock } = deps;
  const randomBytes = deps.randomBytes ?? ((n: number) => crypto.getRandomValues(new Uint8Array(n)));
  const exporter =
    deps.exporter ??
    createOtlpExporter({
      endpoint: settings.otlpEndpoint,
      resource: { "service.name": deps.service, "telemetry.sdk.name": "remora", ...deps.resource },
      clock,
      log: deps.log,
      ...(deps.fetch ? { fetch: deps.fetch } : {}),
    });
  const pending = new Map<string, Pending>();
  const pendingFor = (requestId: string): Pending => {
    let p = pending.get(requestId);
    if (!p) {
      if (pending.size >= MAX_PENDING) pending.delete(pending.keys().next().value!);
      p = { attempts: [], events: [] };
      pending.set(requestId, p);
    }
    return p;
  };

  return {
    exporter,
    wrapSend(send) {
      return async (req, endpoint, options) => {
        const tp = parseTraceparent(req.headers.get("traceparent"));
        const requestId = req.headers.get("x-request-id");
        if (!tp || requestId === null) return send(req, endpoint, options);
        const p = pendingFor(requestId);
        const a: AttemptObservation = {
          traceId: tp.traceId,
          spanId: randomId(8, randomBytes),
          parentSpanId: tp.parentId,
          attempt: p.attempts.length + 1,
          endpoint: endpoint.address,
          startMs: clock.now(),
          endMs: Number.NaN,
        };
        p.attempts.push(a);
        // W3C: the parent-id sent on is the span that made this request: the attempt.
        const headers = new Headers(req.headers);
        headers.set("traceparent", formatTraceparent({ traceId: tp.traceId, parentId: a.spanId, sampled: tp.sampled }));
        const traced = forwardRequest(req, { headers });
        try {
          const res = await send(traced, endpoint, {
            ...options,
            onConnection: (info) => {
              if (info.peerIdentity !== undefined) a.peerIdentity = info.peerIdentity;
              a.reused = info.reused;
              if (info.handshakeMs !== undefined) a.handshakeMs = info.handshakeMs;
              options.onConnection?.(info);
            },
          });
          a.status = res.status;
          return res;
        } catch (e) {
          const timedOut = options.signal.aborted && (options.signal.reason as Error | undefined)?.name === "TimeoutError";
          a.error = {
            kind: e instanceof UpstreamError ? e.kind : timedOut ? "timeout" : "aborted",
            message: e instanceof Error ? e.message : String(e),
          };
          throw e;
        } finally {
          a.endMs = clock.now();
        }
      };
    },
    observe(e) {
      const now = clock.now();
      if (e.type === "request") {
        if (e.direction === "inbound") return exporter.export([inboundSpan(e, now)]);
        const p = pending.get(e.requestId);
        pending.delete(e.requestId);
        // An attempt still waiting when the request ended (its timeout fired) ends with it.
        const attempts = (p?.attempts ?? []).map((a) => (Number.isNaN(a.endMs) ? { ...a, endMs: now } : a));
        return exporter.export(outboundSpans(e, now, attempts, p?.events ?? []));
      }
      if (e.type === "retry" || e.type === "retry-abandoned") pendingFor(e.requestId).events.push({ ...e, timeMs: now });
    },
    close: () => exporter.close(),
  };
}

/** The sidecar's event hub, with every published event also handed to tracing. */
export function tracedHub(hub: EventHub, tracing: Tracing | undefined): EventHub {
  if (!tracing) return hub;
  return {
    publish(e) {
      hub.publish(e);
      tracing.observe(e);
    },
    subscribe: (options) => hub.subscribe(options),
    get subscribers() {
      return hub.subscribers;
    },
    get dropped() {
      return hub.dropped;
    },
  };
}
