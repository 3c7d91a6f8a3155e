// Gathers every registered proxy's admin /metrics on a timer (and on demand), keeping a
// short history per proxy from which `GET /v1/stats` computes rates and quantiles. A new
// proxy is scraped as soon as it registers, so its counters have a baseline near zero.

import type { Clock } from "../../core/clock.ts";
import { parseExposition } from "../../core/metrics/parse.ts";
import { buildReport, type ProxyInput } from "./aggregate.ts";
import type { EndpointHealth, StatsReport } from "./types.ts";
import type { Scrape } from "./window.ts";

/** Prometheus's habit is 15 s; 5 s keeps a 30 s window meaningful. */
export const DEFAULT_SCRAPE_INTERVAL_MS = 5_000;
/** How far back windows may reach. */
export const DEFAULT_RETENTION_MS = 10 * 60_000;
/** An on-demand refresh reuses scrapes younger than this, so dashboards cannot hammer sidecars. */
const FRESH_MS = 1_000;
const SCRAPE_TIMEOUT_MS = 2_000;
/** Scrapes kept per proxy at most (on-demand refreshes can be frequent). */
const MAX_SCRAPES = 900;

export interface ProxyTarget {
  proxy: string;
  service: string;
  identity: string;
  admin?: string;
}

export interface StatsCollectorOptions {
  /** The registered proxies now (the control plane's registry). */
  proxies: () => readonly ProxyTarget[];
  /** Fires "change" when the registry changes, so new proxies are scraped at once. */
  events?: EventTarget;
  clock: Clock;
  fetch: (input: string, init?: RequestInit) => Promise<Response>;
  intervalMs?: number;
  retentionMs?: number;
}

interface ProxyHistory {
  scrapes: Scrape[];
  error?: string;
  lastOk?: number;
}

export class StatsCollector {
  readonly intervalMs: number;
  readonly retentionMs: number;
  readonly #o: StatsCollectorOptions;
  readonly #history = new Map<string, ProxyHistory>();
  #lastRound = -Infinity;
  #round: Promise<void> | undefined;

  constructor(options: StatsCollectorOptions) {
    this.#o = options;
    this.intervalMs = options.intervalMs ?? DEFAULT_SCRAPE_INTERVAL_MS;
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
  }

  /** Scrapes on the interval until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const onChange = () => void this.#scrapeNew();
    this.#o.events?.addEventListener("change", onChange);
    try {
      while (!signal.aborted) {
        await this.scrapeAll();
        await this.#o.clock.sleep(this.intervalMs, signal).catch(() => {});
      }
    } finally {
      this.#o.events?.removeEventListener("change", onChange);
    }
  }

  /** One scrape of every registered proxy; concurrent callers share the round in flight. */
  scrapeAll(): Promise<void> {
    this.#round ??= this.#scrape(this.#o.proxies()).finally(() => {
      this.#lastRound = this.#o.clock.now();
      this.#round = undefined;
    });
    return this.#round;
  }

  /** Scrapes unless the last round is fresher than a second. */
  async refresh(): Promise<void> {
    if (this.#o.clock.now() - this.#lastRound >= FRESH_MS) await this.scrapeAll();
  }

  /** Golden metrics for the window ending now. */
  report(windowMs: number): StatsReport {
    const inputs: ProxyInput[] = this.#o.proxies().map((p) => {
      const h = this.#history.get(p.proxy);
      // Only the fields named here: a registry view carries its own `error` (the last NACK).
      return {
        proxy: p.proxy,
        service: p.service,
        identity: p.identity,
        ...(p.admin === undefined ? {} : { admin: p.admin }),
        history: h?.scrapes ?? [],
        ...(h?.error === undefined ? {} : { error: h.error }),
        ...(h?.lastOk === undefined ? {} : { lastOk: h.lastOk }),
        ...(p.admin === undefined && h === undefined ? { error: "the proxy registered no admin address" } : {}),
      };
    });
    return buildReport(inputs, windowMs, this.#o.clock.now());
  }

  #scrapeNew(): Promise<void> {
    return this.#scrape(this.#o.proxies().filter((p) => !this.#history.has(p.proxy)));
  }

  async #scrape(targets: readonly ProxyTarget[]): Promise<void> {
    const live = new Set(this.#o.proxies().map((p) => p.proxy));
    for (const id of this.#history.keys()) if (!live.has(id)) this.#history.delete(id);
    await Promise.all(targets.map((p) => this.#scrapeOne(p)));
  }

  async #scrapeOne(p: ProxyTarget): Promise<void> {
    if (p.admin === undefined) return;
    let h = this.#history.get(p.proxy);
    if (h === undefined) this.#history.set(p.proxy, (h = { scrapes: [] }));
    const url = `http://${p.admin}/metrics`;
    try {
      const res = await this.#o.fetch(url, { signal: this.#o.clock.timeout(SCRAPE_TIMEOUT_MS) });
      if (!res.ok) {
        await res.body?.cancel();
        throw new Error(`answered HTTP ${res.status}`);
      }
      const families = parseExposition(await res.text(), url);
      const endpoints = await this.#endpoints(p.admin);
      const at = this.#o.clock.now();
      h.scrapes.push({ at, families, ...(endpoints ? { endpoints } : {}) });
      h.lastOk = at;
      delete h.error;
      const cutoff = at - this.retentionMs;
      // Keep the newest scrape older than the cutoff: it is the baseline of the longest window.
      while (h.scrapes.length > MAX_SCRAPES || (h.scrapes.length > 1 && (h.scrapes[1]?.at ?? Infinity) <= cutoff)) h.scrapes.shift();
    } catch (e) {
      h.error = `cannot scrape proxy ${p.proxy} at ${url}: ${String((e as Error)?.message ?? e).replace(/\.$/, "")}.`;
    }
  }

  /** The caller-side endpoint health (admin /endpoints); best effort, since metrics alone still make a report. */
  async #endpoints(admin: string): Promise<EndpointHealth[] | undefined> {
    try {
      const res = await this.#o.fetch(`http://${admin}/endpoints`, { signal: this.#o.clock.timeout(SCRAPE_TIMEOUT_MS) });
      if (!res.ok) {
        await res.body?.cancel();
        return undefined;
      }
      const list = (await res.json()) as { destination: string; endpoints: { address: string; identity?: string; state: string; ejected_until?: string }[] }[];
      return list.flatMap((d) =>
        d.endpoints.map((ep) => ({
          destination: d.destination,
          address: ep.address,
          identity: ep.identity ?? null,
          state: ep.state === "ejected" ? ("ejected" as const) : ("healthy" as const),
          ejectedUntil: ep.ejected_until ?? null,
        })),
      );
    } catch {
      return undefined;
    }
  }
}
