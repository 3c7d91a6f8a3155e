// Runs one of the bench's measuring children (load generator, handshake client) with its
// JSON spec and returns the JSON line it prints.

import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export function runChild<T>(script: "generator.ts" | "handshake.ts", spec: object, timeoutMs: number): Promise<T> {
  const file = fileURLToPath(new URL(`./${script}`, import.meta.url));
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [file, JSON.stringify(spec)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c) => (out += c));
    child.stderr.on("data", (c) => (err += c));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(t);
      const line = out.trim().split("\n").at(-1) ?? "";
      try {
        ok(JSON.parse(line) as T);
      } catch {
        fail(new Error(`${script} exited ${code} without a result: ${err.trim().slice(0, 2000)}`));
      }
    });
  });
}
