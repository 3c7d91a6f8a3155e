// Golden metrics for a window, from each proxy's scrape history: per proxy, per service
// (the callee's inbound view, as `linkerd viz stat` shows a workload) and per edge (the
// caller's outbound view of one destination). Pure: the same history gives the same report.

import { quantile, sumHistograms } from "../../core/metrics/quantile.ts";
import type { HistogramSnapshot } from "../../core/metrics/registry.ts";
import type { EdgeStats, Golden, MtlsShare, ProxyStats, ServiceStats, StatsReport } from "./types.ts";
import { counterIncrease, histogramIncrease, latest, spanSeconds, windowOf, type Scrape } from "./window.ts";

/** The metric names read from a sidecar (src/core/metrics/mesh-metrics.ts). */
export const METRICS = {
  requests: "remora_requests_total",
  duration: "remora_request_duration_seconds",
  retries: "remora_retries_total",
  ejected: "remora_endpoints_ejected",
  ejections: "remora_outlier_ejections_total",
  certExpiry: "remora_cert_expiry_timestamp_seconds",
  /** Inbound requests by `tls` = "mtls" | "plaintext"; older sidecars lack it (mTLS share unknown). */
  inboundTls: "remora_inbound_tls_requests_total",
} as const;

export interface ProxyInput {
  proxy: string;
  service: string;
  identity: string;
  admin?: string;
  /** Every scrape kept for this proxy, oldest first. */
  history: readonly Scrape[];
  /** The latest scrape's failure, if the latest attempt failed. */
  error?: string;
  /** Time of the latest successful scrape, ms. */
  lastOk?: number;
}

/** Additive partial results; rps sums per-proxy rates because each proxy's span differs. */
interface Tally {
  requests: number;
  failures: number;
  rps: number | null;
  hist: HistogramSnapshot[];
  retries: number;
  ejected: number;
}

const empty = (): Tally => ({ requests: 0, failures: 0, rps: null, hist: [], retries: 0, ejected: 0 });

function add(into: Tally, t: Tally): void {
  into.requests += t.requests;
  into.failures += t.failures;
  if (t.rps !== null) into.rps = (into.rps ?? 0) + t.rps;
  into.hist.push(...t.hist);
  into.retries += t.retries;
  into.ejected = Math.max(into.ejected, t.ejected);
}

function golden(t: Tally): Golden {
  let merged: HistogramSnapshot | undefined;
  try {
    merged = t.hist.length > 0 ? sumHistograms(t.hist) : undefined;
  } catch {
    // Sidecars with different bucket layouts cannot be added; show no latency rather than a wrong one.
    merged = undefined;
  }
  const q = (p: number): number | null => {
    if (merged === undefined || merged.count <= 0) return null;
    const v = quantile(merged, p);
    return Number.isFinite(v) ? round(v * 1000, 3) : null;
  };
  return {
    requests: round(t.requests, 3),
    rps: t.rps === null ? null : round(t.rps, 3),
    success: t.requests > 0 ? round((t.requests - t.failures) / t.requests, 4) : null,
    latencyMs: { p50: q(0.5), p95: q(0.95), p99: q(0.99) },
    retries: round(t.retries, 3),
    ejected: t.ejected,
  };
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

interface ProxyTallies {
  inbound: Tally;
  outbound: Map<string, Tally>;
  tls: { mtls: number; plaintext: number; known: boolean };
}

/** One proxy's tallies over the window ending at the latest scrape. */
function tallyProxy(p: ProxyInput, startMs: number): ProxyTallies {
  const w = windowOf(p.history, startMs);
  const span = spanSeconds(w);
  const inbound = empty();
  const outbound = new Map<string, Tally>();
  const dest = (d: string) => {
    let t = outbound.get(d);
    if (t === undefined) outbound.set(d, (t = empty()));
    return t;
  };
  const sideOf = (labels: Record<string, string>): Tally | undefined =>
    labels.direction === "inbound" ? inbound : labels.direction === "outbound" && labels.destination !== undefined ? dest(labels.destination) : undefined;

  for (const s of counterIncrease(w, METRICS.requests).values()) {
    const t = sideOf(s.labels);
    if (t === undefined) continue;
    t.requests += s.value;
    if (s.labels.code_class === "5xx") t.failures += s.value;
  }
  for (const h of histogramIncrease(w, METRICS.duration).values()) {
    const t = sideOf(h.labels);
    if (t !== undefined && h.count > 0) t.hist.push(h);
  }
  for (const s of counterIncrease(w, METRICS.retries).values()) {
    if (s.labels.destination !== undefined) dest(s.labels.destination).retries += s.value;
  }
  for (const s of latest(w, METRICS.ejected)) {
    if (s.labels.destination !== undefined) dest(s.labels.destination).ejected = s.value;
  }
  if (span > 0) {
    inbound.rps = inbound.requests / span;
    for (const t of outbound.values()) t.rps = t.requests / span;
  }
  const tls = { mtls: 0, plaintext: 0, known: (w.at(-1)?.families.has(METRICS.inboundTls) ?? false) };
  for (const s of counterIncrease(w, METRICS.inboundTls).values()) {
    if (s.labels.tls === "mtls") tls.mtls += s.value;
    else if (s.labels.tls === "plaintext") tls.plaintext += s.value;
  }
  return { inbound, outbound, tls };
}

function mtlsShare(t: { mtls: number; plaintext: number; known: boolean }): MtlsShare {
  const total = t.mtls + t.plaintext;
  return { mtls: t.mtls, plaintext: t.plaintext, share: t.known && total > 0 ? round(t.mtls / total, 4) : null };
}

/** The report for the window [nowMs - windowMs, nowMs]. */
export function buildReport(inputs: readonly ProxyInput[], windowMs: number, nowMs: number): StatsReport {
  const startMs = nowMs - windowMs;
  const tallies = inputs.map((p) => ({ p, t: tallyProxy(p, startMs) }));

  const proxies: ProxyStats[] = tallies.map(({ p, t }) => {
    const asCaller = empty();
    for (const o of t.outbound.values()) {
      asCaller.retries += o.retries;
      asCaller.ejected += o.ejected;
    }
    const expiry = Math.max(...latest(p.history, METRICS.certExpiry).map((s) => s.value), -Infinity);
    return {
      proxy: p.proxy,
      service: p.service,
      identity: p.identity,
      admin: p.admin ?? null,
      ...golden({ ...t.inbound, retries: asCaller.retries, ejected: asCaller.ejected }),
      scraped: p.lastOk === undefined ? null : new Date(p.lastOk).toISOString(),
      error: p.error ?? null,
      mtls: mtlsShare(t.tls),
      certExpiry: Number.isFinite(expiry) ? new Date(expiry * 1000).toISOString() : null,
      outbound: [...t.outbound.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([to, o]) => ({ to, ...golden(o) })),
      ejections: latest(p.history, METRICS.ejections)
        .filter((s) => s.labels.destination !== undefined && s.labels.endpoint !== undefined && s.value > 0)
        .map((s) => ({ destination: s.labels.destination!, endpoint: s.labels.endpoint!, total: s.value })),
      endpoints: [...(p.history.at(-1)?.endpoints ?? [])],
    };
  });

  const services = new Map<string, { tally: Tally; proxies: number; meshed: number; tls: { mtls: number; plaintext: number; known: boolean } }>();
  for (const { p, t } of tallies) {
    let s = services.get(p.service);
    if (s === undefined) services.set(p.service, (s = { tally: empty(), proxies: 0, meshed: 0, tls: { mtls: 0, plaintext: 0, known: false } }));
    s.proxies++;
    if (p.error === undefined && p.lastOk !== undefined) s.meshed++;
    // Retries and ejections toward a service are counted by its callers, below.
    add(s.tally, { ...t.inbound, retries: 0, ejected: 0 });
    s.tls.mtls += t.tls.mtls;
    s.tls.plaintext += t.tls.plaintext;
    s.tls.known ||= t.tls.known;
  }

  const edges = new Map<string, { from: string; to: string; tally: Tally }>();
  for (const { p, t } of tallies) {
    for (const [to, o] of t.outbound) {
      const key = `${p.service}\u0000${to}`;
      let e = edges.get(key);
      if (e === undefined) edges.set(key, (e = { from: p.service, to, tally: empty() }));
      add(e.tally, o);
      const callee = services.get(to);
      if (callee !== undefined) {
        callee.tally.retries += o.retries;
        callee.tally.ejected = Math.max(callee.tally.ejected, o.ejected);
      }
    }
  }

  const serviceStats: ServiceStats[] = [...services.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, s]) => ({ name, proxies: s.proxies, meshed: s.meshed, ...golden(s.tally), mtls: mtlsShare(s.tls) }));
  const edgeStats: EdgeStats[] = [...edges.values()]
    .sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to))
    .map((e) => ({ from: e.from, to: e.to, ...golden(e.tally) }));

  return { time: new Date(nowMs).toISOString(), windowSeconds: windowMs / 1000, services: serviceStats, edges: edgeStats, proxies };
}
