// `remora get policies|endpoints|proxies|services`: what the control plane holds, as an aligned
// table for people or as JSON with --json.

import { stringify } from "yaml";
import { parse, UsageError } from "./args.ts";
import { controlFlags, controlHelp, withControl } from "./control-client.ts";
import { table } from "./table.ts";
import { getRoutes } from "./get-routes.ts";

const usage = `Usage: remora get policies|endpoints|proxies|services [--json]
       remora get routes SERVICE [--json]   the route table every caller's sidecar uses for SERVICE

${controlHelp}`;

const PATHS = { policies: "/v1/policies", endpoints: "/v1/endpoints", proxies: "/v1/proxies", services: "/v1/services" } as const;

interface ProxyRow {
  proxy: string;
  service: string;
  identity: string;
  /** Absent for a pure client. */
  address?: string;
  config_version: string | null;
  status: string;
  /** Absent from control planes older than on-demand-by-default. */
  config_mode?: "on-demand" | "whole-mesh";
  destinations?: number;
  error: string | null;
  cert_not_after: string | null;
  last_seen: string;
}

export function formatProxies(list: ProxyRow[]): string {
  if (list.length === 0) return "no proxies registered";
  return table(
    ["PROXY", "SERVICE", "IDENTITY", "ADDRESS", "CONFIG", "MODE", "DESTINATIONS", "STATUS", "CERT EXPIRES", "ERROR"],
    list.map((p) => [p.proxy, p.service, p.identity, p.address ?? "(client only)", p.config_version ?? "-", p.config_mode ?? "-", p.destinations === undefined ? "-" : String(p.destinations), p.status, p.cert_not_after ?? "-", p.error ?? ""]),
    new Set([6]),
  );
}

export function formatEndpoints(eps: Record<string, { address: string; identity: string; proxy: string; last_seen: string }[]>): string {
  const rows = Object.entries(eps).flatMap(([service, list]) => list.map((e) => [service, e.address, e.identity, e.proxy, e.last_seen]));
  if (rows.length === 0) return "no endpoints registered";
  return table(["SERVICE", "ADDRESS", "IDENTITY", "PROXY", "LAST SEEN"], rows);
}

export function formatServices(list: { service: string; namespace: string; vip: string; endpoints: number }[]): string {
  if (list.length === 0) return "no services known";
  return table(["SERVICE", "NAMESPACE", "VIP", "ENDPOINTS"], list.map((s) => [s.service, s.namespace, s.vip, String(s.endpoints)]), new Set([3]));
}

export async function getCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse("get", argv, { json: { type: "boolean" }, help: { type: "boolean" }, ...controlFlags }, true);
  if (values.help) return console.log(usage), 0;
  const [what, ...extra] = positionals;
  if (what === "routes") return getRoutes(values, extra);
  if (what === undefined || !(what in PATHS) || extra.length > 0) throw new UsageError("remora get: expected one of policies, endpoints, proxies, services");
  const kind = what as keyof typeof PATHS;
  const data = await withControl(values, (c) => c.request("GET", PATHS[kind]));
  if (values.json) {
    console.log(JSON.stringify(data, null, 2));
    return 0;
  }
  if (kind === "proxies") console.log(formatProxies(data as ProxyRow[]));
  else if (kind === "endpoints") console.log(formatEndpoints(data as Parameters<typeof formatEndpoints>[0]));
  else if (kind === "services") console.log(formatServices(data as Parameters<typeof formatServices>[0]));
  else {
    const { policies, authorization } = data as { policies: unknown[]; authorization: unknown[] };
    const docs = [...policies, ...authorization];
    console.log(docs.length === 0 ? "no policies applied" : docs.map((d) => stringify(d).trimEnd()).join("\n---\n"));
  }
  return 0;
}
