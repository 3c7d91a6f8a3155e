// The control plane's durable state behind one interface: the embedded file store is the
// default; a shared database (PostgreSQL) can implement the same two calls later.

/** A registered sidecar as persisted; heartbeat times live in memory only. */
export interface ProxyRecord {
  proxy: string;
  service: string;
  namespace: string;
  identity: string;
  /** Absent for a pure client: registered for status, never an endpoint. */
  address?: string;
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
}

export interface Store {
  /** The last saved state, or an empty one on first start. */
  load(): Promise<ControlState>;
  /** Replaces the saved state as a whole: after a crash either the old or the new state is found, never a mix. */
  save(state: ControlState): Promise<void>;
}

export function emptyState(): ControlState {
  return { version: 1, policies: {}, authorization: {}, proxies: {} };
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
