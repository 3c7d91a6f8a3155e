// `remora stat [service|proxy]`: golden metrics per service and per edge, gathered by the
// control plane from every sidecar's /metrics, as aligned tables like `linkerd viz stat`.

import { RemoraError } from "../core/errors.ts";
import type { Golden, MtlsShare, ProxyStats, StatsReport } from "../control/stats/types.ts";
import { parse, UsageError } from "./args.ts";
import { controlFlags, controlHelp, withControl } from "./control-client.ts";
import { table } from "./table.ts";

const usage = `Usage: remora stat [SERVICE|PROXY] [--window 30s] [--json]

Per service (the callee's inbound view) and per edge (caller service -> destination, the
caller's outbound view): success rate (non-5xx share), requests per second, p50/p95/p99
latency, retries, ejected endpoints and the share of inbound requests over mTLS, over the
last --window (1s to 10m; default 30s). Name a service or a proxy to see only its rows.

${controlHelp}`;

const GOLDEN_HEADER = ["SUCCESS", "RPS", "LATENCY_P50", "LATENCY_P95", "LATENCY_P99", "RETRIES", "EJECTED"];

export function percent(v: number | null): string {
  return v === null ? "-" : `${(v * 100).toFixed(2)}%`;
}

export function rate(v: number | null): string {
  return v === null ? "-" : v.toFixed(1);
}

/** Milliseconds as people read them: 0.8ms, 12ms, 1.2s. */
export function latency(ms: number | null): string {
  if (ms === null) return "-";
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 10) return `${Math.round(ms)}ms`;
  return `${ms.toFixed(1)}ms`;
}

const count = (n: number) => String(Math.round(n));
const mtls = (m: MtlsShare) => (m.share === null ? "-" : `${Math.round(m.share * 100)}%`);

function golden(g: Golden): string[] {
  return [percent(g.success), rate(g.rps), latency(g.latencyMs.p50), latency(g.latencyMs.p95), latency(g.latencyMs.p99), count(g.retries), count(g.ejected)];
}

// Numbers right-aligned: every column from SUCCESS on, offset by the leading name columns.
const numeric = (lead: number, n: number) => new Set(Array.from({ length: n }, (_, i) => lead + i));

/** The report as tables: services (or one proxy), then edges. */
export function formatStats(r: StatsReport, filter?: string): string {
  let services = r.services;
  let edges = r.edges;
  let proxies: ProxyStats[] = [];
  if (filter !== undefined) {
    services = r.services.filter((s) => s.name === filter);
    if (services.length > 0) edges = r.edges.filter((e) => e.from === filter || e.to === filter);
    else {
      proxies = r.proxies.filter((p) => p.proxy === filter);
      if (proxies.length === 0) throw new RemoraError("ERR_NOT_FOUND", `no service or proxy named "${filter}" is registered with the control plane; see remora get proxies.`);
      edges = [];
    }
  }
  const out: string[] = [];
  if (proxies.length > 0) {
    out.push(
      table(
        ["PROXY", "SERVICE", "SCRAPED", ...GOLDEN_HEADER, "MTLS"],
        proxies.map((p) => [p.proxy, p.service, p.error === null && p.scraped !== null ? "yes" : "no", ...golden(p), mtls(p.mtls)]),
        numeric(3, 8),
      ),
    );
    const own = proxies.flatMap((p) => p.outbound.map((o) => [p.service, o.to, ...golden(o)]));
    if (own.length > 0) out.push("", "OUTBOUND", table(["FROM", "TO", ...GOLDEN_HEADER], own, numeric(2, 7)));
    for (const p of proxies) if (p.error !== null) out.push("", p.error);
  } else if (services.length === 0) {
    out.push("no proxies registered");
  } else {
    out.push(
      table(
        ["NAME", "MESHED", ...GOLDEN_HEADER, "MTLS"],
        services.map((s) => [s.name, `${s.meshed}/${s.proxies}`, ...golden(s), mtls(s.mtls)]),
        numeric(2, 8),
      ),
    );
    out.push("", "EDGES");
    out.push(edges.length === 0 ? "no traffic between services in this window" : table(["FROM", "TO", ...GOLDEN_HEADER], edges.map((e) => [e.from, e.to, ...golden(e)]), numeric(2, 7)));
    const failing = r.proxies.filter((p) => p.error !== null && services.some((s) => s.name === p.service));
    for (const p of failing) out.push("", p.error!);
  }
  return out.join("\n");
}

export async function statCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    "stat",
    argv,
    { window: { type: "string", default: "30s" }, json: { type: "boolean" }, help: { type: "boolean" }, ...controlFlags },
    true,
  );
  if (values.help) return console.log(usage), 0;
  if (positionals.length > 1) throw new UsageError("remora stat: name at most one service or proxy; see remora stat --help");
  const [filter] = positionals;
  const report = (await withControl(values, (c) => c.request("GET", `/v1/stats?window=${encodeURIComponent(values.window)}`))) as StatsReport;
  if (values.json) {
    if (filter === undefined) console.log(JSON.stringify(report, null, 2));
    else {
      formatStats(report, filter); // the same not-found sentence as the table
      const services = report.services.filter((s) => s.name === filter);
      const narrowed =
        services.length > 0
          ? { ...report, services, edges: report.edges.filter((e) => e.from === filter || e.to === filter), proxies: report.proxies.filter((p) => p.service === filter) }
          : { ...report, services: [], edges: [], proxies: report.proxies.filter((p) => p.proxy === filter) };
      console.log(JSON.stringify(narrowed, null, 2));
    }
    return 0;
  }
  console.log(formatStats(report, filter));
  return 0;
}
