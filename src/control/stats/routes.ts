// The admin routes for observability, registered on the control plane's hono app:
// `GET /v1/stats?window=30s` (golden metrics) and `GET /v1/tap?service=X&max=N` (NDJSON).

import type { Context, Env, Hono } from "hono";
import type { Clock } from "../../core/clock.ts";
import { parseDuration } from "../../core/duration.ts";
import { RemoraError } from "../../core/errors.ts";
import { openTap } from "../tap.ts";
import type { ProxyTarget, StatsCollector } from "./collector.ts";

export const DEFAULT_WINDOW = "30s";
const MIN_WINDOW_MS = 1_000;
const MAX_TAP = 100_000;

export interface ObserveDeps {
  stats: StatsCollector;
  fetch: (input: string, init?: RequestInit) => Promise<Response>;
}

export interface ObserveRouteDeps<E extends Env> {
  proxies: () => readonly ProxyTarget[];
  events: EventTarget;
  clock: Clock;
  requireAdmin: (c: Context<E>) => void;
}

/** "30s" -> 30000, within 1 s .. the collector's retention; one sentence naming `window` otherwise. */
export function parseWindow(text: string | undefined, retentionMs: number): number {
  const given = text ?? DEFAULT_WINDOW;
  let ms: number;
  try {
    ms = parseDuration(given);
  } catch {
    throw new RemoraError("ERR_REQUEST_INVALID", `window: "${given}" is not a duration (e.g. 30s, 5m).`);
  }
  if (ms < MIN_WINDOW_MS || ms > retentionMs) {
    throw new RemoraError("ERR_REQUEST_INVALID", `window: ${given} must be between 1s and ${retentionMs / 60_000}m.`);
  }
  return ms;
}

export function registerObserveRoutes<E extends Env>(app: Hono<E>, o: ObserveDeps, d: ObserveRouteDeps<E>): void {
  app.get("/v1/stats", async (c) => {
    d.requireAdmin(c);
    const windowMs = parseWindow(c.req.query("window"), o.stats.retentionMs);
    await o.stats.refresh();
    return c.json(o.stats.report(windowMs));
  });

  app.get("/v1/tap", (c) => {
    d.requireAdmin(c);
    const service = c.req.query("service");
    if (!service) throw new RemoraError("ERR_REQUEST_INVALID", "service: name the service to tap, e.g. /v1/tap?service=payments.");
    const maxText = c.req.query("max");
    const max = maxText === undefined ? undefined : Number(maxText);
    if (max !== undefined && !(Number.isInteger(max) && max >= 1 && max <= MAX_TAP)) {
      throw new RemoraError("ERR_REQUEST_INVALID", `max: "${maxText}" must be a whole number from 1 to ${MAX_TAP}.`);
    }
    const stream = openTap({
      service,
      ...(max === undefined ? {} : { max }),
      proxies: d.proxies,
      events: d.events,
      fetch: o.fetch,
      clock: d.clock,
      signal: c.req.raw.signal,
    });
    return c.body(stream, 200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  });
}
