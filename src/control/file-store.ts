// The default Store: the whole state in one JSON file, replaced atomically (temp file in the
// same directory, fsync, rename, fsync the directory), so kill -9 at any moment leaves the
// old file or the new one, never half of either.

import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { RemoraError } from "../core/errors.ts";
import { emptyState, type ControlState, type Store } from "./store.ts";

export const STATE_FILE = "state.json";

export class FileStore implements Store {
  readonly path: string;
  readonly #dir: string;
  // Saves run one at a time, in call order: a slow fsync never lets an older state land last.
  #queue: Promise<void> = Promise.resolve();
  #seq = 0;

  constructor(dir: string) {
    this.#dir = dir;
    this.path = join(dir, STATE_FILE);
  }

  async load(): Promise<ControlState> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return emptyState();
      throw new RemoraError("ERR_FILE", `cannot read the control plane state ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    try {
      const state = JSON.parse(text) as ControlState;
      return { ...emptyState(), ...state };
    } catch (e) {
      throw new RemoraError("ERR_FILE", `control plane state ${this.path} is not valid JSON; restore it from a backup or move it away to start empty.`, { cause: e });
    }
  }

  save(state: ControlState): Promise<void> {
    const text = JSON.stringify(state);
    const run = this.#queue.then(() => this.#write(text));
    this.#queue = run.catch(() => {});
    return run;
  }

  async #write(text: string): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.#dir, `.${STATE_FILE}.${process.pid}.${++this.#seq}.tmp`);
    try {
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(text, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw new RemoraError("ERR_FILE", `cannot write the control plane state ${this.path}: ${(e as Error).message}`, { cause: e });
    }
    // The rename is durable only once the directory entry is on disk (POSIX rename(2)).
    const dir = await open(this.#dir, "r");
    try {
      await dir.sync();
    } catch {
      // Some file systems refuse fsync on a directory; the rename itself is still atomic.
    } finally {
      await dir.close();
    }
  }
}
