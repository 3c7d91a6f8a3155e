// How remora starts another remora (the demo's sidecars, `remora run`'s sidecar): the same
// runtime and entry it was started with, from source, from the bundle or as a compiled binary.

import { fileURLToPath } from "node:url";
import { detectRuntime } from "../runtime/detect.ts";

const SOURCE_BIN = fileURLToPath(new URL("../../bin/remora.js", import.meta.url));

/** `remora ARGS` on this runtime: node and bun take the entry script, deno needs `run -A`, a compiled binary takes the args alone. */
export function remoraCommand(args: readonly string[]): { command: string; args: string[] } {
  const runtime = detectRuntime();
  const entry = entryScript();
  if (runtime === "bun" && entry === undefined) return { command: process.execPath, args: [...args] };
  const script = entry ?? SOURCE_BIN;
  return { command: process.execPath, args: runtime === "deno" ? ["run", "-A", script, ...args] : [script, ...args] };
}

/**
 * The script this process was started with when it is a remora entry (bin/remora.js or the
 * bundle dist/remora.mjs); undefined inside a `bun build --compile` binary, whose modules
 * live in Bun's virtual /$bunfs. Anything else (a test runner) falls back to the source entry.
 */
function entryScript(): string | undefined {
  const main = process.argv[1];
  if (main === undefined || main.startsWith("/$bunfs/") || main.includes("~BUN")) return undefined;
  return /remora(\.m?js)?$/.test(main) ? main : SOURCE_BIN;
}
