// The control plane's state machine: policies, authorization and the proxy registry, with
// one version counter bumped on every change a sidecar's snapshot would show. Changes are
// saved through the Store before anyone sees them; watchers wait on one shared promise.

import type { Clock } from "../core/clock.ts";
import type { AppliedDocuments } from "./documents.ts";
import type { ControlState, ProxyRecord, Store } from "./store.ts";

/** The sidecar's heartbeat interval is 5 s; three missed beats and it leaves every caller's view. */
export const DEFAULT_LAPSE_MS = 15_000;

export interface Snapshot {
  version: string;
  policies: unknown[];
  authorization: unknown[];
  endpoints: Record<string, { address: string; identity: string }[]>;
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
}

export interface ControlPlaneOptions {
  store: Store;
  clock: Clock;
  lapseMs?: number;
}

export class ControlPlane {
  readonly events = new EventTarget();
  readonly lapseMs: number;
  readonly #store: Store;
  readonly #clock: Clock;
  #state: ControlState;
  #live = new Map<string, Live>();
  #acks = new Map<string, Ack>();
  #snapshot: { version: number; json: string } | undefined;
  #lock: Promise<unknown> = Promise.resolve();
  #changed!: Promise<void>;
  #fireChanged!: () => void;

  private constructor(options: ControlPlaneOptions, state: ControlState) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.lapseMs = options.lapseMs ?? DEFAULT_LAPSE_MS;
    this.#state = state;
    this.#arm();
    // Proxies saved before a restart stay endpoints for one lapse period: a live sidecar
    // beats again within it, a dead one lapses as if the control plane had never stopped.
    const now = this.#clock.now();
    for (const id of Object.keys(state.proxies)) this.#live.set(id, { lastSeen: now, heartbeat: {} });
  }

  static async open(options: ControlPlaneOptions): Promise<ControlPlane> {
    return new ControlPlane(options, await options.store.load());
  }

  get version(): string {
    return String(this.#state.version);
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
    for (const p of sortedProxies(s)) if (p.address !== undefined) (endpoints[p.service] ??= []).push({ address: p.address, identity: p.identity });
    return {
      version: String(s.version),
      policies: Object.keys(s.policies).sort().map((k) => s.policies[k]),
      authorization: Object.keys(s.authorization).sort().map((k) => s.authorization[k]),
      endpoints,
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
    if (known && known.address === record.address && known.identity === record.identity && known.service === record.service) return;
    await this.#mutate((s) => {
      s.proxies[record.proxy] = record;
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
    const cutoff = this.#clock.now() - this.lapseMs;
    const lapsed = Object.keys(this.#state.proxies).filter((id) => (this.#live.get(id)?.lastSeen ?? 0) < cutoff);
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

  endpoints(): Record<string, EndpointView[]> {
    const out: Record<string, EndpointView[]> = {};
    for (const p of sortedProxies(this.#state)) {
      if (p.address === undefined) continue;
      const lastSeen = this.#live.get(p.proxy)?.lastSeen ?? 0;
      (out[p.service] ??= []).push({ address: p.address, identity: p.identity, proxy: p.proxy, last_seen: new Date(lastSeen).toISOString() });
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
      const next = structuredClone(this.#state);
      next.version = this.#state.version + 1;
      const result = change(next);
      await this.#store.save(next);
      this.#state = next;
      this.#notify();
      return result;
    });
    this.#lock = run.catch(() => {});
    return run;
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

function sortedProxies(s: ControlState): ProxyRecord[] {
  return Object.values(s.proxies).sort((a, b) => (a.service === b.service ? a.proxy.localeCompare(b.proxy) : a.service.localeCompare(b.service)));
}
