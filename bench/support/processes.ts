// Child processes of the bench: started with their output in a log file (a pipe the bench
// had to drain would cost it CPU at thousands of access-log lines per second), ready once
// a log line or a TCP connect says so, and always stopped by their own pid.

import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import net from "node:net";
import { procStats, type ProcStats } from "./proc-stats.ts";

export interface BenchProcess {
  name: string;
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** The JSON line that said "ready", when readiness came from the log. */
  readyLine?: Record<string, unknown>;
  stats(): ProcStats;
  stop(): Promise<void>;
}

const live = new Set<BenchProcess>();

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: Record<string, string>;
  /** Ready when a JSON log line matches, or when this address accepts a TCP connection. */
  ready: { line: (rec: Record<string, unknown>) => boolean } | { connect: string };
  timeoutMs?: number;
}

export async function startProcess(o: StartOptions): Promise<BenchProcess> {
  const fd = openSync(o.logFile, "a");
  const child = spawn(o.command, o.args, { stdio: ["ignore", fd, fd], env: { ...process.env, ...o.env } });
  closeSync(fd);
  const p: BenchProcess = {
    name: o.name,
    pid: child.pid!,
    child,
    logFile: o.logFile,
    stats: () => procStats(child.pid!),
    stop: () => stop(child).finally(() => live.delete(p)),
  };
  live.add(p);
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${signal ?? code}`));
  const deadline = Date.now() + (o.timeoutMs ?? 30_000);
  for (;;) {
    if (exited) throw new Error(`${o.name} ${exited} before it was ready; its log: ${o.logFile}\n${tail(o.logFile)}`);
    if (Date.now() > deadline) {
      await p.stop();
      throw new Error(`${o.name} was not ready within ${(o.timeoutMs ?? 30_000) / 1000} s; its log: ${o.logFile}\n${tail(o.logFile)}`);
    }
    if ("line" in o.ready) {
      const rec = findLine(o.logFile, o.ready.line);
      if (rec) {
        p.readyLine = rec;
        return p;
      }
    } else if (await accepts(o.ready.connect)) return p;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Stops every process still running (the bench's finally). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const t = setTimeout(() => child.kill("SIGKILL"), 5000);
    child.once("exit", () => (clearTimeout(t), ok()));
    child.kill("SIGTERM");
  });
}

function findLine(file: string, match: (rec: Record<string, unknown>) => boolean): Record<string, unknown> | undefined {
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const rec = JSON.parse(line) as Record<string, unknown>;
      if (match(rec)) return rec;
    } catch {
      // a partial line, still being written
    }
  }
  return undefined;
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "";
  }
}

export function accepts(address: string): Promise<boolean> {
  const i = address.lastIndexOf(":");
  return new Promise((ok) => {
    const s = net.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    s.once("connect", () => (s.destroy(), ok(true)));
    s.once("error", () => ok(false));
  });
}

/** A port nobody listens on right now (for configs that need one up front, like HAProxy's). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once("error", fail);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => ok(port));
    });
  });
}

/** On SIGINT/SIGTERM, stops every child before exiting, so none outlives the bench. */
export function stopChildrenOnSignals(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => void stopAll().finally(() => process.exit(130)));
  }
}
