// The admin server (Envoy's :15000 habit): liveness, readiness, Prometheus metrics, the
// active config and the caller-side view of every destination's endpoints.

import type { Clock } from "../core/clock.ts";
import type { Handler } from "../runtime/types.ts";
import type { Sidecar, SidecarSettings } from "./sidecar.ts";
import { CONTENT_TYPE } from "../core/metrics/registry.ts";
import { policyToDocument } from "../core/policy/parse.ts";
import { authorizationToDocument } from "../core/authz.ts";
import { routeTable } from "../core/policy/route-table.ts";
import { heldDestinations } from "./control/mesh-view.ts";

export interface AdminDeps {
  sidecar: Sidecar;
  clock: Clock;
  settings: () => SidecarSettings;
  /** Starts a drain and exit; absent when the host offers none (POST /shutdown then answers 501). */
  shutdown?: () => void;
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
        // on-demand: only what the app calls or declares (src/sidecar/control/subscriptions.ts).
        mode: s.configMode ?? (s.awaitConfig ? "whole-mesh" : "static"),
        destinations_held: heldDestinations(s.mesh),
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
    // This sidecar's effective route table as a caller: one row per rule, per destination.
    "/routes": () => {
      const endpoints = d.settings().mesh.endpoints;
      return json(d.sidecar.pipeline.destinations().flatMap((dest) => routeTable(dest.policy, endpoints[dest.name] ?? [])));
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
  return async (req, info) => {
    const path = new URL(req.url).pathname;
    if (path === "/shutdown") return shutdown(req, info.remoteAddress, d.shutdown);
    const route = routes[path];
    if (!route) return new Response(`not found; try ${Object.keys(routes).join(" ")}\n`, { status: 404 });
    return route(req);
  };
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * `POST /shutdown`, for platforms that run the app apart from the sidecar (a job's last
 * step): loopback callers only, since anyone who can reach the admin port from outside
 * the pod must not be able to take its sidecar down.
 */
function shutdown(req: Request, remote: string, start: (() => void) | undefined): Response {
  if (req.method !== "POST") return new Response("use POST /shutdown\n", { status: 405, headers: { allow: "POST" } });
  if (!isLoopback(remote)) return new Response(`remora: /shutdown is refused from ${remote}: loopback callers only\n`, { status: 403 });
  if (!start) return new Response("remora: this sidecar's host offers no shutdown\n", { status: 501 });
  // Answer first, then drain: the caller learns the request was taken before the listener closes.
  setTimeout(start, 0);
  return new Response("draining\n", { status: 202 });
}

function isLoopback(address: string): boolean {
  const a = address.replace(/^::ffff:/, "");
  return a.startsWith("127.") || a === "::1";
}
