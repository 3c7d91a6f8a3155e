// On-demand config resources: one per destination (its policy, endpoints and VIP) and one
// per service's authorization, each with a version that is a hash of its content, so every
// replica sharing a store names the same content with the same version.

import type { ControlState, ProxyRecord } from "../store.ts";

export interface EndpointResource {
  address: string;
  identity: string;
  labels?: Record<string, string>;
}

/** What a sidecar holds for one destination it calls. */
export type DestinationResource =
  | { version: string; found: true; policy?: unknown; endpoints: EndpointResource[]; vip?: string }
  /** No policy, endpoint or VIP by that name: the sidecar answers 503 naming it. */
  | { version: string; found: false };

/** The authorization document enforced by a sidecar for its own service; null: none applied. */
export interface AuthorizationResource {
  version: string;
  document: unknown;
}

export interface ResourceView {
  readonly stateVersion: number;
  destination(name: string): DestinationResource;
  authorization(service: string): AuthorizationResource;
  /** How many destinations the whole mesh has (what a whole-mesh sidecar holds). */
  size(): number;
}

/**
 * One view per state version, built lazily and shared by every watcher: grouping proxies by
 * service is O(proxies) once per version; a destination's resource is built the first time
 * anyone asks for it at that version, so a change costs nothing for destinations nobody watches.
 */
export function createResourceIndex(current: () => Readonly<ControlState>): () => ResourceView {
  let view: ResourceView | undefined;
  return () => {
    const state = current();
    if (view?.stateVersion !== state.version) view = buildView(state);
    return view;
  };
}

function buildView(state: Readonly<ControlState>): ResourceView {
  let byService: Map<string, ProxyRecord[]> | undefined;
  const destinations = new Map<string, DestinationResource>();
  const authorizations = new Map<string, AuthorizationResource>();
  let size: number | undefined;
  const endpointsOf = (name: string): ProxyRecord[] => {
    if (byService === undefined) {
      byService = new Map();
      for (const p of Object.values(state.proxies)) if (p.address !== undefined) (byService.get(p.service) ?? byService.set(p.service, []).get(p.service)!).push(p);
    }
    return byService.get(name) ?? [];
  };
  return {
    stateVersion: state.version,
    destination(name) {
      let r = destinations.get(name);
      if (r === undefined) {
        r = buildDestination(state, name, endpointsOf(name));
        destinations.set(name, r);
      }
      return r;
    },
    authorization(service) {
      let r = authorizations.get(service);
      if (r === undefined) {
        const document = own(state.authorization, service) ?? null;
        r = { version: versionOf(JSON.stringify(document)), document };
        authorizations.set(service, r);
      }
      return r;
    },
    size() {
      if (size === undefined) {
        const names = new Set([...Object.keys(state.policies), ...Object.keys(state.services ?? {})]);
        for (const p of Object.values(state.proxies)) if (p.address !== undefined) names.add(p.service);
        size = names.size;
      }
      return size;
    },
  };
}

function buildDestination(state: Readonly<ControlState>, name: string, proxies: readonly ProxyRecord[]): DestinationResource {
  const policy = own(state.policies, name);
  const vip = own(state.services ?? {}, name)?.vip;
  if (policy === undefined && vip === undefined && proxies.length === 0) return { version: versionOf(`missing:${name}`), found: false };
  const endpoints = [...proxies]
    .sort((a, b) => a.proxy.localeCompare(b.proxy))
    .map((p) => ({ address: p.address!, identity: p.identity, ...(p.labels ? { labels: p.labels } : {}) }));
  const body = { found: true as const, ...(policy === undefined ? {} : { policy }), endpoints, ...(vip === undefined ? {} : { vip }) };
  return { version: versionOf(JSON.stringify(body)), ...body };
}

/** Own properties only: a destination called "constructor" must not find Object.prototype's. */
function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/**
 * cyrb53 (a public-domain 53-bit string hash): stable across processes and runtimes, so a
 * sidecar failing over to another replica keeps the versions it holds. Not a security
 * boundary: a collision would only delay one update until the destination's next change.
 */
export function versionOf(text: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
}
