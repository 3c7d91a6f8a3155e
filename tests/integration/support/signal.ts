// Signalling test child processes the same way on every runtime. Deno's node:child_process
// (2.9.6) marks a child that `child.kill()` signalled as (code null, signal) even when the
// child caught the signal, drained and exited 0, so a second "is it still running?" check on
// `exitCode` waits forever. Signalling by pid leaves the real exit status to be reported.

import type { ChildProcess } from "node:child_process";

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const gone = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null;

/** Resolves with the child's exit status; at once if it has already exited. */
export function exited(child: ChildProcess): Promise<ExitStatus> {
  if (gone(child)) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((ok) => child.once("exit", (code, signal) => ok({ code, signal })));
}

/** Sends `sig` to the child by pid (not `child.kill`, see above); false when it is gone already. */
export function signal(child: ChildProcess, sig: NodeJS.Signals = "SIGTERM"): boolean {
  if (gone(child) || child.pid === undefined) return false;
  try {
    process.kill(child.pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit status. */
export async function stopChild(child: ChildProcess, graceMs = 5000): Promise<ExitStatus> {
  const done = exited(child);
  signal(child, "SIGTERM");
  const t = setTimeout(() => signal(child, "SIGKILL"), graceMs);
  try {
    return await done;
  } finally {
    clearTimeout(t);
  }
}
