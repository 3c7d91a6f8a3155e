// The PostgreSQL schema as numbered migrations, applied at start: each once, in its own
// transaction, recorded in remora_migrations, under an advisory lock so replicas starting
// together never race. Add new migrations at the end; never edit one that has shipped.

import type pg from "pg";

/** Advisory lock keys (pg_advisory_lock(int, int)): first half "remo" in ASCII. */
export const LOCK_SPACE = 0x72656d6f;
export const LOCK_MIGRATE = 1;
export const LOCK_SECRETS = 2;
export const LOCK_SWEEP = 3;

/** NOTIFY channel: every committed state change sends its new version. */
export const CHANGES_CHANNEL = "remora_changes";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "state, registry, services and secrets",
    sql: `
      CREATE TABLE remora_meta (
        id integer PRIMARY KEY CHECK (id = 1),
        version bigint NOT NULL
      );
      INSERT INTO remora_meta (id, version) VALUES (1, 1);
      CREATE TABLE remora_policies (destination text PRIMARY KEY, doc jsonb NOT NULL);
      CREATE TABLE remora_authorization (destination text PRIMARY KEY, doc jsonb NOT NULL);
      CREATE TABLE remora_proxies (
        proxy text PRIMARY KEY,
        record jsonb NOT NULL,
        -- Always the database's now(): replicas' clocks never decide a lapse.
        last_seen timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE remora_services (
        service text PRIMARY KEY,
        namespace text NOT NULL,
        vip text NOT NULL UNIQUE
      );
      CREATE TABLE remora_secrets (
        name text PRIMARY KEY,
        iv bytea NOT NULL,
        ciphertext bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
      );
    `,
  },
];

/** Applies every migration not yet recorded; returns the versions applied by this call. */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await client.query("SELECT pg_advisory_lock($1, $2)", [LOCK_SPACE, LOCK_MIGRATE]);
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS remora_migrations (
      version integer PRIMARY KEY,
      name text NOT NULL,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`);
    const done = new Set((await client.query<{ version: number }>("SELECT version FROM remora_migrations")).rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO remora_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
        await client.query("COMMIT");
      } catch (e) {
        await client.query("ROLLBACK").catch(() => {});
        throw e;
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1, $2)", [LOCK_SPACE, LOCK_MIGRATE]).catch(() => {});
  }
}
