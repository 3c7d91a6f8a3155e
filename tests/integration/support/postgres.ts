// A throwaway PostgreSQL server for tests: initdb into a temp dir, started on a free
// loopback port with its unix socket in that dir, stopped and removed at the end.
// As root the server runs as `nobody` (initdb and postgres refuse to run as root).

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./control-process.ts";

export interface Postgres {
  url: string;
  port: number;
  dir: string;
  /** Stops the server (fast shutdown) and starts it again on the same port and data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Stops the server and removes its directory; safe to call twice. */
  destroy(): Promise<void>;
}

/** The directory holding initdb and postgres, or undefined (then the tests skip, saying why). */
export function findPostgresBin(): string | undefined {
  const fromEnv = process.env.REMORA_PG_BIN;
  if (fromEnv && existsSync(join(fromEnv, "initdb"))) return fromEnv;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).filter((v) => existsSync(join(root, v, "bin", "initdb"))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

export const POSTGRES_SKIP = findPostgresBin() === undefined
  ? "SKIPPED: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb); install the `postgresql` package or set REMORA_PG_BIN"
  : false;

const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
const RUN_AS = "nobody";
const RUN_GROUP = "nogroup";

/** Runs a PostgreSQL binary, as `nobody` when we are root. */
function command(bin: string, args: string[]): [string, string[]] {
  // setpriv execs the binary itself, so the child we hold (and signal) is postgres, not a wrapper.
  return asRoot ? ["setpriv", [`--reuid=${RUN_AS}`, `--regid=${RUN_GROUP}`, "--clear-groups", bin, ...args]] : [bin, args];
}

export async function startPostgres(): Promise<Postgres> {
  const bin = findPostgresBin();
  if (bin === undefined) throw new Error(String(POSTGRES_SKIP));
  const dir = await mkdtemp(join(tmpdir(), "remora-pg-"));
  const data = join(dir, "data");
  if (asRoot) {
    const uid = Number(spawnSync("id", ["-u", RUN_AS], { encoding: "utf8" }).stdout.trim());
    const gid = Number(spawnSync("id", ["-g", RUN_AS], { encoding: "utf8" }).stdout.trim());
    await chown(dir, uid, gid);
  }
  const pwfile = join(dir, "pw");
  await writeFile(pwfile, "remora-test\n");
  if (asRoot) await chown(pwfile, Number(spawnSync("id", ["-u", RUN_AS], { encoding: "utf8" }).stdout.trim()), 0);
  const [initCmd, initArgs] = command(join(bin, "initdb"), ["-D", data, "-U", "remora", "--pwfile", pwfile, "-A", "scram-sha-256", "--no-sync", "-E", "UTF8", "--locale", "C"]);
  const init = spawnSync(initCmd, initArgs, { encoding: "utf8" });
  if (init.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    const [cmd, args] = command(join(bin, "postgres"), ["-D", data, "-p", String(port), "-h", "127.0.0.1", "-k", dir, "-c", "fsync=off", "-c", "max_connections=200"]);
    const c = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    child = c;
    let log = "";
    c.stderr!.on("data", (d) => (log += d));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (c.exitCode !== null) throw new Error(`postgres exited ${c.exitCode}: ${log}`);
      const ready = spawnSync(join(bin, "pg_isready"), ["-h", "127.0.0.1", "-p", String(port), "-q"]);
      if (ready.status === 0) return;
      if (Date.now() > deadline) throw new Error(`postgres not ready in 30 s: ${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once("exit", () => r()));
    // SIGINT is PostgreSQL's "fast" shutdown: open sessions are cut, as in a real restart.
    c.kill("SIGINT");
    const t = setTimeout(() => c.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(t);
  };

  try {
    await start();
  } catch (e) {
    await stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  let destroyed = false;
  return {
    url: `postgres://remora:remora-test@127.0.0.1:${port}/postgres`,
    port,
    dir,
    restart: async () => {
      await stop();
      await start();
    },
    stop,
    destroy: async () => {
      if (destroyed) return;
      destroyed = true;
      await stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}
