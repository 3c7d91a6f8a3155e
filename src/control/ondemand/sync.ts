// Whether a sidecar is in sync (GET /v1/proxies, `remora get proxies`). A whole-mesh sidecar
// must hold the latest state version; an on-demand one only the latest version of what it
// watches (the destinations and authorization named in its last POST /v2/config), so a
// change elsewhere in the mesh does not leave every on-demand sidecar PENDING.

import type { ProxyView } from "../control-plane.ts";
import type { ResourceView } from "./resources.ts";
import { delta, type WatchRequest } from "./watch.ts";

export type ConfigMode = "on-demand" | "whole-mesh";

export interface ProxyStatus extends ProxyView {
  config_mode: ConfigMode;
  /** Destinations watched (on-demand) or in the whole mesh (whole-mesh). */
  destinations: number;
}

interface Watcher {
  identity: string;
  service: string;
  request: WatchRequest;
  at: number;
}

export interface ConfigSync {
  /** Records a watch request: what the proxy holds now. `registeredAs`: the identity that registered that proxy id, if any. */
  watched(identity: string, service: string, request: WatchRequest, registeredAs: string | undefined): void;
  /** The registry's rows with each on-demand proxy judged by what it watches. */
  judge(rows: readonly ProxyView[], view: ResourceView): ProxyStatus[];
}

/** Watchers not (yet) registered are kept this long: a sidecar's first poll may beat its first heartbeat. */
const UNREGISTERED_GRACE_MS = 60_000;
/** Bounds the memory a caller can make this hold with made-up proxy ids. */
const MAX_WATCHERS = 100_000;

export function createConfigSync(now: () => number): ConfigSync {
  const watchers = new Map<string, Watcher>();
  return {
    watched(identity, service, request, registeredAs) {
      // Only the identity that registered a proxy id speaks for it.
      if (registeredAs !== undefined && registeredAs !== identity) return;
      if (!watchers.has(request.proxy) && watchers.size >= MAX_WATCHERS) return;
      watchers.set(request.proxy, { identity, service, request, at: now() });
    },
    judge(rows, view) {
      const registered = new Set(rows.map((r) => r.proxy));
      for (const [proxy, w] of watchers) if (!registered.has(proxy) && now() - w.at > UNREGISTERED_GRACE_MS) watchers.delete(proxy);
      return rows.map((row) => {
        const w = watchers.get(row.proxy);
        if (w === undefined || w.identity !== row.identity) return { ...row, config_mode: "whole-mesh", destinations: view.size() };
        const current = delta(view, w.request, w.service) === undefined;
        // In sync with what it watches: its last ACK or NACK stands (a NACKed destination keeps its last good config).
        const status = !current || row.config_version === null ? "PENDING" : row.error !== null ? "NACK" : "ACK";
        return { ...row, status, config_mode: "on-demand", destinations: Object.keys(w.request.destinations).length };
      });
    },
  };
}
