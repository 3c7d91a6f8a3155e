// A tiny OpenTelemetry collector for the demo: accepts OTLP/HTTP JSON on POST /v1/traces
// (what the sidecars' --otlp-endpoint sends) and keeps the spans, so the demo can show a
// request's trace from what the sidecars actually exported.

import { createServer, type Server } from "node:http";
import type { OtlpKeyValue, OtlpTracesRequest } from "../../core/trace/otlp-json.ts";

export interface CollectedSpan {
  /** The exporting sidecar's resource service.name. */
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  kind: number;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
  status: { code: number; message?: string };
}

export interface Collector {
  /** The base URL to give `remora proxy --otlp-endpoint`. */
  readonly url: string;
  readonly spans: CollectedSpan[];
  /** Export requests received. */
  readonly requests: number;
  /** Waits until `done(spans of the trace)` holds or the time is up; answers that trace's spans. */
  waitForTrace(traceId: string, done: (spans: CollectedSpan[]) => boolean, timeoutMs: number): Promise<CollectedSpan[]>;
  close(): Promise<void>;
}

/** Listens on `host` (loopback by default; the pod demo uses its pod address so sidecars in other pods reach it). */
export async function startCollector(host = "127.0.0.1"): Promise<Collector> {
  const spans: CollectedSpan[] = [];
  const waiters = new Set<() => void>();
  let requests = 0;
  const server: Server = createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/traces") {
      res.writeHead(404, { "content-type": "application/json" }).end('{"error":"POST /v1/traces only"}');
      return;
    }
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      try {
        spans.push(...decode(JSON.parse(body) as OtlpTracesRequest));
        requests++;
      } catch (e) {
        res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: String(e) }));
        return;
      }
      // An ExportTraceServiceResponse with nothing rejected.
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
      for (const w of [...waiters]) w();
    });
  });
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, host, ok));
  const { port } = server.address() as { port: number };

  return {
    url: `http://${host}:${port}`,
    spans,
    get requests() {
      return requests;
    },
    waitForTrace(traceId, done, timeoutMs) {
      const of = () => spans.filter((s) => s.traceId === traceId);
      if (done(of())) return Promise.resolve(of());
      return new Promise((ok) => {
        const check = () => {
          if (done(of())) finish();
        };
        const finish = () => {
          clearTimeout(t);
          waiters.delete(check);
          ok(of());
        };
        const t = setTimeout(finish, timeoutMs);
        waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((ok) => {
        server.closeAllConnections();
        server.close(() => ok());
      }),
  };
}

function decode(req: OtlpTracesRequest): CollectedSpan[] {
  return (req.resourceSpans ?? []).flatMap((rs) => {
    const resource = attributesOf(rs.resource?.attributes ?? []);
    const service = String(resource["service.name"] ?? "unknown");
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        service,
        traceId: s.traceId,
        spanId: s.spanId,
        ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
        name: s.name,
        kind: s.kind,
        startMs: nanosToMs(s.startTimeUnixNano),
        endMs: nanosToMs(s.endTimeUnixNano),
        attributes: attributesOf(s.attributes ?? []),
        status: s.status ?? { code: 0 },
      })),
    );
  });
}

function attributesOf(kvs: OtlpKeyValue[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of kvs) {
    if ("stringValue" in value) out[key] = value.stringValue;
    else if ("boolValue" in value) out[key] = value.boolValue;
    else if ("intValue" in value) out[key] = Number(value.intValue);
    else if ("doubleValue" in value) out[key] = value.doubleValue;
  }
  return out;
}

const nanosToMs = (ns: string) => Number(BigInt(ns) / 1000n) / 1000;
