// The admin server (Envoy's :15000 habit): liveness, readiness, Prometheus metrics, the
// active config and the caller-side view of every destination's endpoints.

import type { Clock } from "../core/clock.ts";
import type { Handler } from "../runtime/types.ts";
import type { Sidecar, SidecarSettings } from "./sidecar.ts";
import { CONTENT_TYPE } from "../core/metrics/registry.ts";
import { policyToDocument } from "../core/policy/parse.ts";
import { authorizationToDocument } from "../core/authz.ts";

export interface AdminDeps {
  sidecar: Sidecar;
  clock: Clock;
  settings: () => SidecarSettings;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2) + "\n", { status, headers: { "content-type": "application/json" } });

export function createAdminHandler(d: AdminDeps): Handler {
  const routes: Record<string, (req: Request) => Response> = {
    "/live": () => new Response("live\n"),
    "/ready": () => {
      const r = d.sidecar.readiness();
      return r.ready ? new Response("ready\n") : new Response(`not ready: ${r.reason}\n`, { status: 503 });
    },
    // NDJSON, one event per line, until the reader disconnects; ?types=request,eject filters.
    "/events": (req) => {
      const types = new URL(req.url).searchParams.get("types");
      const stream = d.sidecar.events.subscribe({
        ...(types ? { types: new Set(types.split(",").map((t) => t.trim())) } : {}),
        signal: req.signal,
      });
      return new Response(stream, { headers: { "content-type": "application/x-ndjson", "cache-control": "no-store" } });
    },
    "/metrics": () => new Response(d.sidecar.metrics.expose(), { headers: { "content-type": CONTENT_TYPE } }),
    "/config": () => {
      const s = d.settings();
      const id = d.sidecar.identity();
      return json({
        version: s.mesh.version,
        identity: { id: id.id, serial: id.serial, not_before: iso(id.notBefore), not_after: iso(id.notAfter) },
        listeners: {
          outbound: d.sidecar.outbound.address,
          inbound: d.sidecar.inbound ? { listen: d.sidecar.inbound.address, app: s.inbound?.app, mode: s.inbound?.mode } : null,
          admin: d.sidecar.admin.address,
        },
        endpoints: s.mesh.endpoints,
        policies: s.mesh.policies.map(policyToDocument),
        authorization: d.sidecar.authorization().map(authorizationToDocument),
      });
    },
    "/endpoints": () => {
      const now = d.clock.now();
      return json(
        d.sidecar.pipeline.destinations().map((dest) => ({
          destination: dest.name,
          endpoints: dest.endpoints.map((ep) => ({
            address: ep.address,
            identity: ep.identity,
            state: ep.ejected ? "ejected" : "healthy",
            ejected_until: ep.ejected && ep.ejectedUntilMs !== undefined ? iso(ep.ejectedUntilMs) : undefined,
            ejected_for_ms: ep.ejected && ep.ejectedUntilMs !== undefined ? Math.max(0, ep.ejectedUntilMs - now) : undefined,
            ejections: ep.ejectionCount,
            active_requests: ep.activeRequests,
          })),
        })),
      );
    },
  };
  return async (req) => {
    const route = routes[new URL(req.url).pathname];
    if (!route) return new Response(`not found; try ${Object.keys(routes).join(" ")}\n`, { status: 404 });
    return route(req);
  };
}

const iso = (ms: number) => new Date(ms).toISOString();
