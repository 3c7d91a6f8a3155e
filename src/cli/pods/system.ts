// Small synchronous process helpers for the pod tooling: run a command or fail with one
// sentence, tell a live process from a zombie, signal a whole process group.

import { spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";

/** Runs a command to completion; throws one sentence with its stderr when it fails. */
export function sh(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", input: input ?? "", timeout: 30_000 });
  if (r.error || r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed: ${(r.error?.message ?? r.stderr).trim() || `exit ${r.status}`}`);
  }
  return r.stdout;
}

/** Runs a command, ignoring its output and its outcome (teardown steps that may find nothing to do). */
export function quiet(cmd: string, args: string[]): void {
  spawnSync(cmd, args, { stdio: "ignore", timeout: 30_000 });
}

/** Blocks the thread: teardown is synchronous so it can run from process "exit". */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Running, or stopped: a zombie (killed, not yet reaped) counts as gone. */
export function alive(pid: number): boolean {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
}

/** The first of these commands not found on PATH, or undefined when all are there. */
export function missingCommand(commands: readonly (readonly [cmd: string, versionFlag: string, pkg: string])[]): string | undefined {
  for (const [cmd, flag, pkg] of commands) {
    const r = spawnSync(cmd, [flag], { stdio: "ignore", timeout: 10_000 });
    if ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT") return `${cmd} was not found on PATH; install the ${pkg} package`;
  }
  return undefined;
}

/** A signal (SIGKILL unless told) to the child's whole process group (it was started detached, as a group leader). */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone
  }
}
