// The control plane's durable state behind one interface: the embedded file store is the
// default; a shared database (PostgreSQL, src/control/pg/) adds the optional calls that let
// several replicas share one state (change events, database-time heartbeats, sweep lease).

/** A registered sidecar as persisted; heartbeat times live in memory only. */
export interface ProxyRecord {
  proxy: string;
  service: string;
  namespace: string;
  identity: string;
  /** Absent for a pure client: registered for status, never an endpoint. */
  address?: string;
  /** Endpoint labels (`remora proxy --label version=v2`), for policy subsets. */
  labels?: Record<string, string>;
  admin?: string;
  runtime?: string;
  config_version?: string;
  cert_serial?: string;
  cert_not_after?: string;
}

export interface ControlState {
  /** Snapshot version counter; bumped on every policy or registry membership change. */
  version: number;
  /** Policy documents as applied, keyed by route.destination. */
  policies: Record<string, unknown>;
  /** Authorization documents as applied, keyed by authorization.destination. */
  authorization: Record<string, unknown>;
  proxies: Record<string, ProxyRecord>;
  /** Service name -> its virtual IP (src/control/services.ts); absent in state saved before VIPs existed. */
  services?: Record<string, { namespace: string; vip: string }>;
}

export interface Store {
  /** The last saved state, or an empty one on first start. */
  load(): Promise<ControlState>;
  /** Replaces the saved state as a whole: after a crash either the old or the new state is found, never a mix. */
  save(state: ControlState): Promise<void>;
  /**
   * Shared stores: calls `onChange` when the saved state may have changed under this
   * process (another replica wrote, or the store reconnected and may have missed events).
   * Returns the unsubscribe.
   */
  watch?(onChange: () => void): () => void;
  /** Shared stores: records a heartbeat with the store's own clock, so replica clock skew never lapses a proxy. */
  touch?(proxy: string): Promise<void>;
  /** Shared stores: the proxies whose last heartbeat, by the store's clock, is older than `lapseMs`. */
  lapsed?(lapseMs: number): Promise<string[]>;
  /** Shared stores: true while this process holds the one sweep lease among the replicas. */
  sweepLease?(): Promise<boolean>;
  close?(): Promise<void>;
}

/**
 * Thrown by `save` when another writer saved first (the state it was based on is stale):
 * the caller reloads and applies its change again, so no write is lost or applied twice.
 */
export class StoreConflict extends Error {
  override name = "StoreConflict";
}

export function emptyState(): ControlState {
  return { version: 1, policies: {}, authorization: {}, proxies: {}, services: {} };
}

/** A store that keeps nothing across processes: for tests and embedding. */
export class MemoryStore implements Store {
  #saved = JSON.stringify(emptyState());
  saves = 0;

  async load(): Promise<ControlState> {
    return JSON.parse(this.#saved) as ControlState;
  }

  async save(state: ControlState): Promise<void> {
    this.#saved = JSON.stringify(state);
    this.saves++;
  }
}
