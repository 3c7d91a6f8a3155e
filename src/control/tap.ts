// `GET /v1/tap?service=X`: a live fan-in of the finished requests of one service, read
// from every proxy's admin event feed (`GET /events?types=request`): the service's own
// proxies report what they received (inbound), callers report what they sent to it
// (outbound). Like `linkerd viz tap`, each request may show once from each side.

import type { Clock } from "../core/clock.ts";
import type { ProxyTarget } from "./stats/collector.ts";
import { ndjsonRecords } from "../core/ndjson.ts";

export interface TapLine {
  type: "request";
  time: string;
  /** Which side saw it: the callee's sidecar (inbound) or the caller's (outbound). */
  direction: "inbound" | "outbound";
  /** The proxy that reported it. */
  proxy: string;
  /** The caller's SPIFFE ID; null for a plaintext inbound request. */
  caller: string | null;
  callee: string;
  /** The callee's verified SPIFFE ID (outbound, mTLS) or the reporting proxy's own (inbound). */
  calleeIdentity: string | null;
  method: string;
  path: string;
  /** Absent when no response came back (local failure before any answer). */
  status: number | null;
  latencyMs: number;
  mtls: boolean;
  upstream: string | null;
  traceId: string | null;
}

export type TapMessage =
  | TapLine
  | { type: "hello"; time: string; service: string; proxies: string[] }
  | { type: "error"; time: string; proxy: string; error: string };

export interface TapOptions {
  service: string;
  /** Stop after this many request lines. */
  max?: number;
  proxies: () => readonly ProxyTarget[];
  /** Registry changes ("change"): proxies that register later are tapped too. */
  events?: EventTarget;
  fetch: (input: string, init?: RequestInit) => Promise<Response>;
  clock: Clock;
  signal?: AbortSignal;
}

/** The hello line waits this long at most for every proxy's feed to answer. */
const HELLO_WAIT_MS = 3_000;

/** The authority's host, lowercased: "payments" from "payments:8080". */
export function hostOf(authority: string): string {
  const a = authority.toLowerCase();
  if (a.startsWith("[")) return a.slice(0, a.indexOf("]") + 1);
  const i = a.lastIndexOf(":");
  return i >= 0 && a.indexOf(":") === i ? a.slice(0, i) : a;
}

/** What one proxy's request record says about `service`, or undefined when it is not about it. */
export function tapLineOf(p: ProxyTarget, service: string, rec: Record<string, unknown>): TapLine | undefined {
  if (rec.type !== "request") return undefined;
  const str = (v: unknown): string | null => (typeof v === "string" ? v : null);
  const base = {
    type: "request" as const,
    time: str(rec.time) ?? "",
    proxy: p.proxy,
    callee: service,
    method: str(rec.method) ?? "",
    path: str(rec.path) ?? "",
    status: typeof rec.status === "number" ? rec.status : null,
    latencyMs: typeof rec.durationMs === "number" ? Math.round(rec.durationMs * 1000) / 1000 : 0,
    upstream: str(rec.upstream),
    traceId: str(rec.traceId),
  };
  if (rec.direction === "inbound" && p.service === service) {
    return { ...base, direction: "inbound", caller: str(rec.peer), calleeIdentity: p.identity, mtls: rec.mtls === true };
  }
  if (rec.direction === "outbound" && hostOf(str(rec.authority) ?? "") === service) {
    return { ...base, direction: "outbound", caller: p.identity, calleeIdentity: str(rec.peer), mtls: rec.mtls === true };
  }
  return undefined;
}

/** The tap as an NDJSON stream: one hello line, then request lines (and error lines for unreachable proxies). */
export function openTap(o: TapOptions): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const stop = new AbortController();
  const feeds = new Map<string, AbortController>();
  let sent = 0;
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const now = () => new Date(o.clock.now()).toISOString();

  const finish = () => {
    if (stop.signal.aborted) return;
    stop.abort();
    o.events?.removeEventListener("change", onChange);
    o.signal?.removeEventListener("abort", finish);
    for (const f of feeds.values()) f.abort();
    try {
      controller.close();
    } catch {
      // the reader cancelled first
    }
  };
  const emit = (m: TapMessage) => {
    if (stop.signal.aborted) return;
    controller.enqueue(encoder.encode(JSON.stringify(m) + "\n"));
    if (m.type === "request" && o.max !== undefined && ++sent >= o.max) finish();
  };

  /** Reads one proxy's feed until it ends or the tap stops; resolves at its hello line (or failure). */
  const follow = (p: ProxyTarget): Promise<void> => {
    const feed = new AbortController();
    feeds.set(p.proxy, feed);
    const signal = AbortSignal.any([stop.signal, feed.signal]);
    let ready!: () => void;
    const helloSeen = new Promise<void>((r) => (ready = r));
    void (async () => {
      try {
        const res = await o.fetch(`http://${p.admin}/events?types=request`, { signal });
        if (!res.ok || res.body === null) throw new Error(`answered HTTP ${res.status}`);
        for await (const rec of ndjsonRecords(res.body as unknown as AsyncIterable<Uint8Array>)) {
          if (rec.type === "hello") ready();
          const line = tapLineOf(p, o.service, rec);
          if (line) emit(line);
        }
      } catch (e) {
        if (!signal.aborted) emit({ type: "error", time: now(), proxy: p.proxy, error: `cannot read the event feed of proxy ${p.proxy} at ${p.admin}: ${String((e as Error)?.message ?? e).replace(/\.$/, "")}.` });
      } finally {
        ready();
        if (feeds.get(p.proxy) === feed) feeds.delete(p.proxy);
      }
    })();
    return helloSeen;
  };

  const followNew = (): Promise<void>[] => {
    const registered = o.proxies();
    const ids = new Set(registered.map((p) => p.proxy));
    for (const [id, f] of feeds) if (!ids.has(id)) f.abort();
    return registered.filter((p) => p.admin !== undefined && !feeds.has(p.proxy)).map(follow);
  };
  const onChange = () => void followNew();

  return new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      if (o.signal?.aborted) return finish();
      o.signal?.addEventListener("abort", finish, { once: true });
      o.events?.addEventListener("change", onChange);
      const first = followNew();
      const watching = [...feeds.keys()];
      // The hello says the tap is live: every feed answered (or failed), or a few seconds passed.
      void Promise.race([Promise.all(first), o.clock.sleep(HELLO_WAIT_MS, stop.signal).catch(() => {})]).then(() =>
        emit({ type: "hello", time: now(), service: o.service, proxies: watching }),
      );
    },
    cancel() {
      finish();
    },
  });
}
