// The control plane's state machine: policies, authorization and the proxy registry, with
// one version counter bumped on every change a sidecar's snapshot would show. Changes are
// saved through the Store before anyone sees them; watchers wait on one shared promise.

import type { Clock } from "../core/clock.ts";
import type { AppliedDocuments } from "./documents.ts";
import { StoreConflict, type ControlState, type ProxyRecord, type Store } from "./store.ts";
import { assignVips, DEFAULT_SERVICE_CIDR, parseServiceCidr, serviceViews, servicesInState, snapshotServices, type ServiceCidr, type ServiceView } from "./services.ts";

/** The sidecar's heartbeat interval is 5 s; three missed beats and it leaves every caller's view. */
export const DEFAULT_LAPSE_MS = 15_000;

export interface Snapshot {
  version: string;
  policies: unknown[];
  authorization: unknown[];
  endpoints: Record<string, { address: string; identity: string; labels?: Record<string, string> }[]>;
  /** Service name -> its virtual IP, so a sidecar can route a request whose Host is a VIP; absent when there are none. */
  services?: Record<string, { vip: string }>;
}

export type AckStatus = "ACK" | "NACK";

interface Live {
  lastSeen: number;
  heartbeat: Partial<ProxyRecord>;
}

interface Ack {
  version: string;
  status: AckStatus;
  error?: string;
}

export interface ProxyView {
  proxy: string;
  service: string;
  namespace: string;
  identity: string;
  /** Absent for a pure client (a sidecar with no app behind it): it calls, nobody calls it. */
  address?: string;
  admin?: string;
  runtime?: string;
  config_version: string | null;
  status: AckStatus | "PENDING";
  error: string | null;
  cert_serial: string | null;
  cert_not_after: string | null;
  last_seen: string;
}

export interface EndpointView {
  address: string;
  identity: string;
  proxy: string;
  last_seen: string;
  labels?: Record<string, string>;
}

export interface ControlPlaneOptions {
  store: Store;
  clock: Clock;
  lapseMs?: number;
  /** Where service VIPs come from (default 240.240.0.0/16). */
  serviceCidr?: string;
}

export class ControlPlane {
  readonly events = new EventTarget();
  readonly lapseMs: number;
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #serviceCidr: ServiceCidr;
  #state: ControlState;
  #live = new Map<string, Live>();
  #acks = new Map<string, Ack>();
  #snapshot: { version: number; json: string } | undefined;
  #lock: Promise<unknown> = Promise.resolve();
  #changed!: Promise<void>;
  #fireChanged!: () => void;
  #reloadQueued = false;

  private constructor(options: ControlPlaneOptions, state: ControlState) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.lapseMs = options.lapseMs ?? DEFAULT_LAPSE_MS;
    this.#serviceCidr = parseServiceCidr(options.serviceCidr ?? DEFAULT_SERVICE_CIDR);
    this.#state = state;
    this.#arm();
    // Proxies saved before a restart stay endpoints for one lapse period: a live sidecar
    // beats again within it, a dead one lapses as if the control plane had never stopped.
    const now = this.#clock.now();
    for (const id of Object.keys(state.proxies)) this.#live.set(id, { lastSeen: now, heartbeat: {} });
    // A shared store (PostgreSQL) tells us when another replica wrote: reload, wake watchers.
    options.store.watch?.(() => this.#reloadFromStore());
  }

  static async open(options: ControlPlaneOptions): Promise<ControlPlane> {
    const plane = new ControlPlane(options, await options.store.load());
    // State saved before VIPs existed: its services get theirs now, once.
    const missing = servicesInState(plane.#state).filter((w) => plane.#state.services?.[w.service] === undefined);
    if (missing.length > 0) await plane.#mutate((s) => assignVips(s, missing, plane.#serviceCidr));
    return plane;
  }

  get version(): string {
    return String(this.#state.version);
  }

  /** The current state, read-only: for views derived once per version (src/control/ondemand/). */
  state(): Readonly<ControlState> {
    return this.#state;
  }

  /** The snapshot every sidecar gets, as JSON, built once per version. */
  snapshotJson(): string {
    if (this.#snapshot?.version !== this.#state.version) {
      this.#snapshot = { version: this.#state.version, json: JSON.stringify(this.snapshot()) };
    }
    return this.#snapshot.json;
  }

  snapshot(): Snapshot {
    const s = this.#state;
    const endpoints: Snapshot["endpoints"] = {};
    const services = snapshotServices(s);
    for (const p of sortedProxies(s)) {
      if (p.address !== undefined) (endpoints[p.service] ??= []).push({ address: p.address, identity: p.identity, ...(p.labels ? { labels: p.labels } : {}) });
    }
    return {
      version: String(s.version),
      policies: Object.keys(s.policies).sort().map((k) => s.policies[k]),
      authorization: Object.keys(s.authorization).sort().map((k) => s.authorization[k]),
      endpoints,
      ...(Object.keys(services).length === 0 ? {} : { services }),
    };
  }

  /**
   * Resolves true as soon as the version differs from `version`, false after `waitMs` with
   * no change (or when `signal` aborts). All waiters share one promise; each holds one timer.
   */
  async waitForChange(version: string, waitMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.version !== version) return true;
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await Promise.race([
        this.#changed.then(() => true),
        this.#clock.sleep(waitMs, stop.signal).then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      stop.abort();
      signal?.removeEventListener("abort", onAbort);
    }
  }

  policies(): { policies: unknown[]; authorization: unknown[] } {
    const { policies, authorization } = this.snapshot();
    return { policies, authorization };
  }

  /** Stores every document of one apply; returns the destinations applied and the new version. */
  async applyDocuments(docs: AppliedDocuments): Promise<{ applied: string[]; version: string }> {
    const version = await this.#mutate((s) => {
      for (const [dest, doc] of docs.policies) s.policies[dest] = doc;
      for (const [dest, doc] of docs.authorization) s.authorization[dest] = doc;
      assignVips(s, [...docs.policies.keys()].map((service) => ({ service, namespace: "default" })), this.#serviceCidr);
      return String(s.version);
    });
    return { applied: [...new Set([...docs.policies.keys(), ...docs.authorization.keys()])].sort(), version };
  }

  /** Removes a destination's policy and authorization; false when it had neither. */
  async deletePolicy(destination: string): Promise<boolean> {
    if (!(destination in this.#state.policies) && !(destination in this.#state.authorization)) return false;
    await this.#mutate((s) => {
      delete s.policies[destination];
      delete s.authorization[destination];
    });
    return true;
  }

  /** The registered proxy with this id, if any. */
  proxy(id: string): ProxyRecord | undefined {
    return this.#state.proxies[id];
  }

  /**
   * Registers or refreshes a proxy. A new proxy, or one whose address or identity changed,
   * is a membership change (saved, version bumped); a plain heartbeat touches memory only.
   */
  async heartbeat(record: ProxyRecord): Promise<void> {
    const known = this.#state.proxies[record.proxy];
    this.#live.set(record.proxy, { lastSeen: this.#clock.now(), heartbeat: record });
    if (known && known.address === record.address && known.identity === record.identity && known.service === record.service && sameLabels(known.labels, record.labels)) {
      // Shared store: the beat is stamped with the database's clock, which every replica's sweep reads.
      await this.#store.touch?.(record.proxy);
      return;
    }
    await this.#mutate((s) => {
      s.proxies[record.proxy] = record;
      assignVips(s, [{ service: record.service, namespace: record.namespace }], this.#serviceCidr);
    });
  }

  /** Drops a proxy (drain or lapse); false when it was not registered. */
  async removeProxy(id: string): Promise<boolean> {
    if (!(id in this.#state.proxies)) return false;
    this.#live.delete(id);
    this.#acks.delete(id);
    await this.#mutate((s) => {
      delete s.proxies[id];
    });
    return true;
  }

  recordAck(proxy: string, ack: Ack): void {
    this.#acks.set(proxy, ack);
  }

  /** Removes every proxy whose last heartbeat is older than the lapse period; returns their ids. */
  async sweep(): Promise<string[]> {
    let lapsed: string[];
    if (this.#store.lapsed) {
      // Shared store: one replica sweeps (the lease holder), by heartbeats in the database.
      if (this.#store.sweepLease && !(await this.#store.sweepLease())) return [];
      lapsed = (await this.#store.lapsed(this.lapseMs)).filter((id) => id in this.#state.proxies);
    } else {
      const cutoff = this.#clock.now() - this.lapseMs;
      lapsed = Object.keys(this.#state.proxies).filter((id) => (this.#live.get(id)?.lastSeen ?? 0) < cutoff);
    }
    if (lapsed.length === 0) return [];
    for (const id of lapsed) {
      this.#live.delete(id);
      this.#acks.delete(id);
    }
    await this.#mutate((s) => {
      for (const id of lapsed) delete s.proxies[id];
    });
    return lapsed;
  }

  proxies(): ProxyView[] {
    const current = this.version;
    return sortedProxies(this.#state).map((p) => {
      const live = this.#live.get(p.proxy);
      const hb = { ...p, ...live?.heartbeat };
      const ack = this.#acks.get(p.proxy);
      return {
        proxy: p.proxy,
        service: p.service,
        namespace: p.namespace,
        identity: p.identity,
        ...(p.address === undefined ? {} : { address: p.address }),
        ...(hb.admin === undefined ? {} : { admin: hb.admin }),
        ...(hb.runtime === undefined ? {} : { runtime: hb.runtime }),
        config_version: ack?.version ?? hb.config_version ?? null,
        status: ack === undefined || ack.version !== current ? "PENDING" : ack.status,
        error: ack?.error ?? null,
        cert_serial: hb.cert_serial ?? null,
        cert_not_after: hb.cert_not_after ?? null,
        last_seen: new Date(live?.lastSeen ?? 0).toISOString(),
      };
    });
  }

  /** Every service with its VIP and how many endpoints it has now. */
  services(): ServiceView[] {
    return serviceViews(this.#state);
  }

  endpoints(): Record<string, EndpointView[]> {
    const out: Record<string, EndpointView[]> = {};
    for (const p of sortedProxies(this.#state)) {
      if (p.address === undefined) continue;
      const lastSeen = this.#live.get(p.proxy)?.lastSeen ?? 0;
      (out[p.service] ??= []).push({ address: p.address, identity: p.identity, proxy: p.proxy, last_seen: new Date(lastSeen).toISOString(), ...(p.labels ? { labels: p.labels } : {}) });
    }
    return out;
  }

  /**
   * Runs `change` on a copy of the state with the version bumped, saves the copy, and only
   * then makes it current and wakes watchers: nobody sees a version a crash could lose.
   * Mutations run one at a time so none overwrites another's save.
   */
  #mutate<T>(change: (s: ControlState) => T): Promise<T> {
    const run = this.#lock.then(async () => {
      for (let attempt = 0; ; attempt++) {
        const next = structuredClone(this.#state);
        next.version = this.#state.version + 1;
        const result = change(next);
        try {
          await this.#store.save(next);
        } catch (e) {
          // A shared store refused a save based on a stale state (another replica wrote
          // first): adopt the newer state and apply the change again on top of it.
          if (!(e instanceof StoreConflict) || attempt >= 50) throw e;
          this.#adopt(await this.#store.load());
          continue;
        }
        this.#state = next;
        this.#notify();
        return result;
      }
    });
    this.#lock = run.catch(() => {});
    return run;
  }

  /** Queued behind mutations, and coalesced: a burst of change events costs one reload. */
  #reloadFromStore(): void {
    if (this.#reloadQueued) return;
    this.#reloadQueued = true;
    const run = this.#lock.then(async () => {
      this.#reloadQueued = false;
      this.#adopt(await this.#store.load());
    });
    // A failed reload (store down) is retried on the store's next event (it fires one on reconnect).
    this.#lock = run.catch(() => {});
  }

  /** Makes a state loaded from the store current, waking watchers when its version moved. */
  #adopt(state: ControlState): void {
    if (state.version === this.#state.version) return;
    const now = this.#clock.now();
    for (const id of Object.keys(state.proxies)) if (!this.#live.has(id)) this.#live.set(id, { lastSeen: now, heartbeat: {} });
    this.#state = state;
    this.#notify();
  }

  #arm(): void {
    this.#changed = new Promise<void>((resolve) => (this.#fireChanged = resolve));
  }

  #notify(): void {
    const fire = this.#fireChanged;
    this.#arm();
    fire();
    this.events.dispatchEvent(new Event("change"));
  }
}

/** Labels are part of membership: a changed label moves an endpoint between subsets. */
function sameLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  const ka = Object.keys(a ?? {});
  return ka.length === Object.keys(b ?? {}).length && ka.every((k) => a?.[k] === b?.[k]);
}

function sortedProxies(s: ControlState): ProxyRecord[] {
  return Object.values(s.proxies).sort((a, b) => (a.service === b.service ? a.proxy.localeCompare(b.proxy) : a.service.localeCompare(b.service)));
}
