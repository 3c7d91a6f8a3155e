// Reading the files a command is given, with errors that name the file and the field
// that pointed at it.

import { readFile } from "node:fs/promises";
import { RemoraError } from "../core/errors.ts";

export async function readText(path: string, what?: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "it is a directory" : (e as Error).message;
    throw new RemoraError("ERR_FILE", `cannot read ${what ? `${what} ` : ""}${path}: ${why}`);
  }
}
