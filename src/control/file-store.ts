// The default Store: the whole state in one JSON file, replaced atomically (temp file in the
// same directory, fsync, rename, fsync the directory), so kill -9 at any moment leaves the
// old file or the new one, never half of either.

import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { RemoraError } from "../core/errors.ts";
import { emptyState, type ControlState, type Store } from "./store.ts";
import { writeFileAtomic } from "./atomic-write.ts";

export const STATE_FILE = "state.json";

export class FileStore implements Store {
  readonly path: string;
  readonly #dir: string;
  // Saves run one at a time, in call order: a slow fsync never lets an older state land last.
  #queue: Promise<void> = Promise.resolve();

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
    try {
      await writeFileAtomic(this.path, text, 0o600);
    } catch (e) {
      throw new RemoraError("ERR_FILE", `cannot write the control plane state ${this.path}: ${(e as Error).message}`, { cause: e });
    }
  }
}
