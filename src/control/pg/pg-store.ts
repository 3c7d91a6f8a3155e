// The PostgreSQL Store: the control plane's state in tables shared by every replica.
// Saves are whole-state with optimistic concurrency on remora_meta.version (only the rows
// that changed are written); each commit NOTIFYs its version so every replica reloads and
// wakes its watchers; heartbeats and lapses use the database's now(); one replica at a
// time holds the sweep lease (a session advisory lock on the listening connection).

import pg from "pg";
import type { ControlLogger } from "../app.ts";
import { emptyState, StoreConflict, type ControlState, type ProxyRecord, type Store } from "../store.ts";
import { connectError, createPool, parseStoreUrl, redactUrl } from "./connection.ts";
import { CHANGES_CHANNEL, LOCK_SPACE, LOCK_SWEEP, migrate } from "./migrations.ts";

export interface PgStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  logger?: ControlLogger;
}

const quiet: ControlLogger = { info() {}, warn() {} };
const RECONNECT_MAX_MS = 2_000;

export class PgStore implements Store {
  /** The database URL without its password, for logs and errors. */
  readonly where: string;
  readonly pool: pg.Pool;
  readonly #url: string;
  readonly #log: ControlLogger;
  /** The state as last loaded or saved by this process: saves write only what differs from it. */
  #last: ControlState = emptyState();
  #listener: pg.Client | undefined;
  #watchers = new Set<() => void>();
  #lease = false;
  #graceNext = false;
  #closed = false;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;

  private constructor(o: PgStoreOptions) {
    this.#url = o.url;
    this.where = redactUrl(o.url);
    this.#log = o.logger ?? quiet;
    this.pool = createPool(o.url, (err) => this.#log.warn({ err: err.message, store: this.where }, "PostgreSQL connection lost; reconnecting on next use"));
  }

  /** Connects, applies pending migrations and starts listening for changes; ERR_STORE when the database cannot be reached. */
  static async open(o: PgStoreOptions): Promise<PgStore> {
    parseStoreUrl(o.url);
    const store = new PgStore(o);
    let client: pg.PoolClient;
    try {
      client = await store.pool.connect();
    } catch (e) {
      await store.pool.end().catch(() => {});
      throw connectError(o.url, e);
    }
    try {
      const applied = await migrate(client);
      if (applied.length > 0) store.#log.info({ store: store.where, migrations: applied }, "store schema migrated");
    } finally {
      client.release();
    }
    try {
      await store.#listen();
    } catch (e) {
      await store.pool.end().catch(() => {});
      throw connectError(o.url, e);
    }
    return store;
  }

  async load(): Promise<ControlState> {
    const c = await this.pool.connect();
    try {
      // One snapshot of every table: a concurrent commit is either wholly seen or not at all.
      await c.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
      const meta = await c.query<{ version: string }>("SELECT version FROM remora_meta WHERE id = 1");
      const policies = await c.query<{ destination: string; doc: unknown }>("SELECT destination, doc FROM remora_policies");
      const authz = await c.query<{ destination: string; doc: unknown }>("SELECT destination, doc FROM remora_authorization");
      const proxies = await c.query<{ proxy: string; record: ProxyRecord }>("SELECT proxy, record FROM remora_proxies");
      const services = await c.query<{ service: string; namespace: string; vip: string }>("SELECT service, namespace, vip FROM remora_services");
      await c.query("COMMIT");
      const state: ControlState = { version: Number(meta.rows[0]?.version ?? 1), policies: {}, authorization: {}, proxies: {}, services: {} };
      for (const r of policies.rows) state.policies[r.destination] = r.doc;
      for (const r of authz.rows) state.authorization[r.destination] = r.doc;
      for (const r of proxies.rows) state.proxies[r.proxy] = r.record;
      for (const r of services.rows) state.services![r.service] = { namespace: r.namespace, vip: r.vip };
      this.#last = structuredClone(state);
      return state;
    } catch (e) {
      await c.query("ROLLBACK").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  /**
   * Writes the rows that differ from the state this process last loaded, if and only if
   * nobody else saved since (version compare-and-set in the same transaction); otherwise
   * throws StoreConflict and writes nothing.
   */
  async save(state: ControlState): Promise<void> {
    const prev = this.#last;
    const c = await this.pool.connect();
    try {
      await c.query("BEGIN");
      const cas = await c.query("UPDATE remora_meta SET version = $1 WHERE id = 1 AND version = $2", [state.version, prev.version]);
      if (cas.rowCount !== 1) {
        await c.query("ROLLBACK");
        throw new StoreConflict(`the state in ${this.where} moved past version ${prev.version}`);
      }
      for (const [k, doc] of changed(prev.policies, state.policies)) {
        if (doc === undefined) await c.query("DELETE FROM remora_policies WHERE destination = $1", [k]);
        else await c.query("INSERT INTO remora_policies (destination, doc) VALUES ($1, $2::jsonb) ON CONFLICT (destination) DO UPDATE SET doc = EXCLUDED.doc", [k, JSON.stringify(doc)]);
      }
      for (const [k, doc] of changed(prev.authorization, state.authorization)) {
        if (doc === undefined) await c.query("DELETE FROM remora_authorization WHERE destination = $1", [k]);
        else await c.query("INSERT INTO remora_authorization (destination, doc) VALUES ($1, $2::jsonb) ON CONFLICT (destination) DO UPDATE SET doc = EXCLUDED.doc", [k, JSON.stringify(doc)]);
      }
      for (const [k, rec] of changed(prev.proxies, state.proxies)) {
        if (rec === undefined) await c.query("DELETE FROM remora_proxies WHERE proxy = $1", [k]);
        else await c.query("INSERT INTO remora_proxies (proxy, record) VALUES ($1, $2::jsonb) ON CONFLICT (proxy) DO UPDATE SET record = EXCLUDED.record, last_seen = now()", [k, JSON.stringify(rec)]);
      }
      const services = changed(prev.services ?? {}, state.services ?? {});
      // Deletes first: a VIP freed and taken in the same save must not trip the UNIQUE constraint.
      for (const [k, s] of services) if (s === undefined) await c.query("DELETE FROM remora_services WHERE service = $1", [k]);
      for (const [k, s] of services) {
        if (s !== undefined) await c.query("INSERT INTO remora_services (service, namespace, vip) VALUES ($1, $2, $3) ON CONFLICT (service) DO UPDATE SET namespace = EXCLUDED.namespace, vip = EXCLUDED.vip", [k, s.namespace, s.vip]);
      }
      // Delivered to every listener (this one too) only when the transaction commits.
      await c.query("SELECT pg_notify($1, $2)", [CHANGES_CHANNEL, String(state.version)]);
      await c.query("COMMIT");
      this.#last = structuredClone(state);
    } catch (e) {
      if (!(e instanceof StoreConflict)) await c.query("ROLLBACK").catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  watch(onChange: () => void): () => void {
    this.#watchers.add(onChange);
    return () => this.#watchers.delete(onChange);
  }

  async touch(proxy: string): Promise<void> {
    await this.pool.query("UPDATE remora_proxies SET last_seen = now() WHERE proxy = $1", [proxy]);
  }

  async lapsed(lapseMs: number): Promise<string[]> {
    if (this.#graceNext) {
      // A new lease holder (first start, failover, or the database back after an outage)
      // gives every proxy one lapse period to beat again, as a restarted file-store control
      // plane does: heartbeats may have failed while nobody could write them.
      this.#graceNext = false;
      await this.pool.query("UPDATE remora_proxies SET last_seen = now() WHERE last_seen < now() - $1 * interval '1 millisecond'", [lapseMs]);
      return [];
    }
    const r = await this.pool.query<{ proxy: string }>("SELECT proxy FROM remora_proxies WHERE last_seen < now() - $1 * interval '1 millisecond' ORDER BY proxy", [lapseMs]);
    return r.rows.map((row) => row.proxy);
  }

  async sweepLease(): Promise<boolean> {
    const l = this.#listener;
    if (l === undefined) return (this.#lease = false);
    if (this.#lease) return true;
    const r = await l.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [LOCK_SPACE, LOCK_SWEEP]);
    if (r.rows[0]?.ok === true) {
      this.#lease = true;
      this.#graceNext = true;
      this.#log.info({ store: this.where }, "holding the registry sweep lease");
    }
    return this.#lease;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#reconnectTimer);
    const l = this.#listener;
    this.#listener = undefined;
    this.#lease = false;
    await l?.end().catch(() => {});
    await this.pool.end().catch(() => {});
  }

  /** The long-lived session that LISTENs and holds the sweep lease; reconnected with back-off when it drops. */
  async #listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, keepAlive: true, connectionTimeoutMillis: 5_000 });
    let dropped = false;
    const drop = (err?: Error): void => {
      if (dropped) return;
      dropped = true;
      if (this.#listener === client) this.#listener = undefined;
      this.#lease = false;
      client.end().catch(() => {});
      if (this.#closed) return;
      this.#log.warn({ store: this.where, err: err?.message ?? "connection ended" }, "PostgreSQL change listener disconnected; reconnecting");
      this.#reconnect(0);
    };
    client.on("error", drop);
    client.on("end", () => drop());
    client.on("notification", (n) => {
      // Our own commits come back too; nothing to reload for them.
      if (n.payload === String(this.#last.version)) return;
      this.#fire();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGES_CHANNEL}`);
    } catch (e) {
      dropped = true;
      client.end().catch(() => {});
      throw e;
    }
    this.#listener = client;
  }

  #reconnect(attempt: number): void {
    const delay = Math.min(RECONNECT_MAX_MS, 100 * 2 ** attempt);
    this.#reconnectTimer = setTimeout(() => {
      if (this.#closed) return;
      this.#listen().then(
        () => {
          this.#log.info({ store: this.where }, "PostgreSQL change listener reconnected");
          // Changes committed while we were not listening were never delivered: reload now.
          this.#fire();
        },
        () => this.#reconnect(attempt + 1),
      );
    }, delay);
  }

  #fire(): void {
    for (const w of this.#watchers) w();
  }
}

/** Keys whose value differs between a and b, with b's value (undefined: removed). */
function changed<T>(a: Record<string, T>, b: Record<string, T>): [string, T | undefined][] {
  const out: [string, T | undefined][] = [];
  for (const [k, v] of Object.entries(b)) if (!(k in a) || JSON.stringify(a[k]) !== JSON.stringify(v)) out.push([k, v]);
  for (const k of Object.keys(a)) if (!(k in b)) out.push([k, undefined]);
  return out;
}
