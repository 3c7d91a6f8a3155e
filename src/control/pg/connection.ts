// Opening PostgreSQL from a `--store postgres://…` URL: parse it, name it in errors without
// its password, and turn the driver's connect failures into one sentence a user can act on.

import pg from "pg";
import { RemoraError } from "../../core/errors.ts";

/** The URL as it may be logged or shown: everything but the password. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = "";
    return u.toString();
  } catch {
    return "(an unparsable URL)";
  }
}

/** Checks the scheme and shape of a `--store` database URL; throws ERR_STORE naming it. */
export function parseStoreUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RemoraError("ERR_STORE", `--store "${redactUrl(url)}" is not a URL; give postgres://user:password@host:port/database.`);
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new RemoraError("ERR_STORE", `--store ${redactUrl(url)} is not a postgres:// URL; give postgres://user:password@host:port/database or leave --store out for the file store.`);
  }
  if (u.hostname === "" && !u.searchParams.has("host")) {
    throw new RemoraError("ERR_STORE", `--store ${redactUrl(url)} names no host; give postgres://user:password@host:port/database.`);
  }
  return u;
}

/** One sentence for a failed connect, naming the database without its password. */
export function connectError(url: string, e: unknown): RemoraError {
  const err = e as { code?: string; message?: string };
  const why = err.code === "28P01" || err.code === "28000"
    ? "the user name or password was refused"
    : err.code === "3D000"
      ? "that database does not exist"
      : (err.message ?? String(e)).replace(/\.$/, "");
  return new RemoraError("ERR_STORE", `cannot connect to PostgreSQL at ${redactUrl(url)} (${why}); check --store and that the database is up.`, { cause: e });
}

export function createPool(url: string, onError: (err: Error) => void): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 10, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 });
  // An idle client whose server went away emits here; without a listener it would crash the process.
  pool.on("error", onError);
  return pool;
}
