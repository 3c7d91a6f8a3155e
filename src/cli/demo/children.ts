// The demo's child processes: `remora …` on the runtime the demo itself runs on, each in a
// process group of its own (detached) so stopping it stops everything it started, and
// its JSON log lines read as they come (readiness, enrolment, config applied).

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { remoraCommand } from "../self.ts";
import { onJsonLines } from "../json-lines.ts";
import { PARENT_PID_ENV } from "../parent-watch.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

export type LogLine = Record<string, unknown> & { msg?: string };

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly logs: LogLine[];
  /** The first log line with this message (or undefined if the child exits first). */
  waitForLog(msg: string, timeoutMs: number): Promise<LogLine | undefined>;
  /** The next log line with this message from now on, ignoring earlier ones. */
  nextLog(msg: string, timeoutMs: number): Promise<LogLine | undefined>;
  /** One line to the child's stdin (only when spawned with `stdin: true`). */
  send(line: string): void;
  /** Last lines of stderr and non-JSON stdout, for error messages. */
  tail(): string;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** SIGTERM to the process group, SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  /** An argv prefix the command runs under, e.g. `ip netns exec POD setpriv --reuid U …` (each execs the next, so the pid stays). */
  wrap?: readonly string[];
  /** The whole environment (default: this process's). */
  env?: Record<string, string>;
  /** Keep a pipe to the child's stdin for send(). */
  stdin?: boolean;
}

export function spawnRemora(name: string, args: readonly string[], onLog: (line: LogLine) => void = () => {}, o: SpawnOptions = {}): Child {
  const cmd = remoraCommand(args);
  const argv = [...(o.wrap ?? []), cmd.command, ...cmd.args];
  // detached: a new process group, so one kill(-pid) reaches whatever the child starts too.
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    detached: true,
    stdio: [o.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    // The child drains if this process dies without stopping it (src/cli/parent-watch.ts).
    env: { ...(o.env ?? process.env), [PARENT_PID_ENV]: String(process.pid) },
  });
  // A child that exits while we write would otherwise crash this process with EPIPE.
  child.stdin?.on("error", () => {});
  const logs: LogLine[] = [];
  const waiters: { msg: string; done: (l: LogLine | undefined) => void }[] = [];
  let text = "";
  const keep = (s: string) => {
    text = (text + s).slice(-4000);
  };
  onJsonLines(
    child.stdout!,
    (rec) => {
      logs.push(rec);
      onLog(rec);
      for (const w of [...waiters]) {
        if (w.msg === rec.msg) {
          waiters.splice(waiters.indexOf(w), 1);
          w.done(rec);
        }
      }
    },
    (line) => keep(line + "\n"),
  );
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: string | null }>((ok) => {
    child.once("error", (e) => (keep(String(e)), ok({ code: null, signal: null })));
    child.once("exit", (code, signal) => ok({ code, signal }));
  });
  void exited.then(() => {
    for (const w of waiters.splice(0)) w.done(undefined);
  });
  let stopping: Promise<void> | undefined;
  const alive = () => child.exitCode === null && child.signalCode === null;
  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // Already gone, or no group (spawn failed): fall back to the child itself.
      if (alive()) child.kill(signal);
    }
  };

  const nextLog = (msg: string, timeoutMs: number): Promise<LogLine | undefined> => {
    if (!alive()) return Promise.resolve(undefined);
    return new Promise((ok) => {
      const w = { msg, done: (l: LogLine | undefined) => (clearTimeout(t), ok(l)) };
      const t = setTimeout(() => (waiters.splice(waiters.indexOf(w), 1), ok(undefined)), timeoutMs);
      waiters.push(w);
    });
  };

  return {
    name,
    pid: child.pid ?? -1,
    logs,
    exited,
    tail: () => text.trim(),
    waitForLog(msg, timeoutMs) {
      const seen = logs.find((l) => l.msg === msg);
      return seen ? Promise.resolve(seen) : nextLog(msg, timeoutMs);
    },
    nextLog,
    send(line) {
      child.stdin?.write(`${line}\n`);
    },
    stop(graceMs = 3000) {
      stopping ??= (async () => {
        if (alive()) {
          signalGroup("SIGTERM");
          const late = setTimeout(() => signalGroup("SIGKILL"), graceMs);
          await exited;
          clearTimeout(late);
        }
        // The leader is gone; anything left in its group goes too.
        signalGroup("SIGKILL");
      })();
      return stopping;
    },
  };
}
