// `remora get routes SERVICE`: the route table a caller's sidecar applies to requests for
// SERVICE. Every sidecar holds the same snapshot, so it is computed from the control
// plane's applied policy (defaults included) and its registry's endpoint labels; one
// sidecar's live view is on its admin server at GET /routes.

import { logicalName } from "../core/router.ts";
import { defaultPolicy, parsePolicy } from "../core/policy/parse.ts";
import { routeTable, type RouteRow } from "../core/policy/route-table.ts";
import type { Endpoint } from "../core/endpoint.ts";
import { UsageError } from "./args.ts";
import { type ControlFlagValues, withControl } from "./control-client.ts";
import { table } from "./table.ts";

export function formatRoutes(rows: readonly RouteRow[]): string {
  return table(
    ["RULE", "MATCH", "BACKENDS", "TIMEOUT", "RETRIES", "ACTIONS"],
    rows.map((r) => [r.rule, r.match, r.backends, r.timeout, r.retries, r.actions]),
  );
}

export async function getRoutes(values: ControlFlagValues & { json?: boolean | undefined }, args: string[]): Promise<number> {
  const [service, ...extra] = args;
  if (service === undefined || extra.length > 0) throw new UsageError("remora get routes: expected one SERVICE, e.g. remora get routes payments");
  const name = logicalName(service);
  const [policies, endpoints] = await withControl(values, (c) =>
    Promise.all([c.request("GET", "/v1/policies"), c.request("GET", "/v1/endpoints")]),
  );
  const docs = (policies as { policies?: unknown[] }).policies ?? [];
  const doc = docs.find((d) => logicalName(String((d as { route?: { destination?: unknown } }).route?.destination ?? "")) === name);
  const policy = doc === undefined ? defaultPolicy(name) : parsePolicy(doc, `policy for ${name}`);
  const rows = routeTable(policy, ((endpoints as Record<string, Endpoint[]>)[name] ?? []) as Endpoint[]);
  console.log(values.json ? JSON.stringify(rows, null, 2) : formatRoutes(rows));
  return 0;
}
