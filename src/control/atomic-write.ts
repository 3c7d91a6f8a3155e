// Replacing a file so that a crash at any moment (kill -9, power loss) leaves either the
// old or the new content, never a mix: write a temp file beside it, fsync, rename over
// the target, fsync the directory.

import { open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

let seq = 0;

export async function writeFileAtomic(path: string, text: string, mode = 0o600): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++seq}.tmp`);
  try {
    const fh = await open(tmp, "w", mode);
    try {
      await fh.writeFile(text, "utf8");
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  // The rename is durable only once the directory entry is on disk (POSIX rename(2)).
  const d = await open(dir, "r");
  try {
    await d.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the rename itself is still atomic.
  } finally {
    await d.close();
  }
}
