// Where a process's CPU goes, in three parts, sampled by Linux `perf` (package linux-perf):
// the kernel (system calls, loopback TCP, waking up), compiled JavaScript (JavaScriptCore's
// JIT code, which perf sees as anonymous `[JIT]` memory) and native user code (the runtime's
// own executable: its interpreter, garbage collector, allocator, TLS and sockets, or a native
// proxy's whole program). `cpu-clock` counts only time the process runs, so idle time in
// `epoll_wait` is not charged to the code that ran last, as Bun's `--cpu-prof` does.

import { execFile, spawn, type ChildProcess } from "node:child_process";

export interface CpuSplit {
  kernel: number;
  native: number;
  jit: number;
  /** Samples taken off the main thread: GC helpers, the JIT compiler, the allocator's scavenger. */
  otherThreads: number;
  samples: number;
}

export interface PerfRecording {
  stop(): Promise<CpuSplit>;
}

/** What `perf ARGS` wrote to stdout; its stderr in the error if it fails. */
export function perfOutput(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile("perf", args, { maxBuffer: 512 * 1024 * 1024 }, (err, out, stderr) => (err ? reject(new Error(`perf ${args[0]}: ${stderr.trim() || err.message}`)) : resolve(out))),
  );
}

/** Rows of `perf report --stdio -n` as [samples, key] pairs (a recording with call graphs has a second percentage column). */
function reportRows(text: string): Array<[number, string]> {
  const rows: Array<[number, string]> = [];
  for (const line of text.split("\n")) {
    const m = /^\s+[\d.]+%\s+(?:[\d.]+%\s+)?(\d+)\s+(.+?)\s*$/.exec(line);
    if (m) rows.push([Number(m[1]), m[2]!]);
  }
  return rows;
}

/** The split of a recording. */
export async function splitOf(file: string): Promise<CpuSplit> {
  const base = ["report", "-i", file, "--stdio", "-n", "-g", "none"];
  const [byDso, byThread] = await Promise.all([perfOutput([...base, "--sort", "dso"]), perfOutput([...base, "--sort", "pid"])]);
  return splitFromReports(byDso, byThread);
}

/** The split from `perf report --stdio -n` by object (`--sort dso`) and by thread (`--sort pid`). */
export function splitFromReports(byDso: string, byThread: string): CpuSplit {
  const dsos = reportRows(byDso);
  const samples = dsos.reduce((sum, [n]) => sum + n, 0);
  const split: CpuSplit = { kernel: 0, native: 0, jit: 0, otherThreads: 0, samples };
  if (samples === 0) return split;
  for (const [n, dso] of dsos) {
    if (dso.startsWith("[kernel")) split.kernel += n / samples;
    else if (dso.startsWith("[JIT]") || dso.startsWith("[unknown]")) split.jit += n / samples;
    else split.native += n / samples;
  }
  // The busiest thread, listed first, is the event loop's in every proxy measured here.
  const threads = reportRows(byThread).map(([n]) => n);
  split.otherThreads = threads.slice(1).reduce((a, b) => a + b, 0) / samples;
  return split;
}

/** Samples `pid` with cpu-clock (and its call stacks, with callGraph) until stop() is called. */
export function recordPerf(pid: number, file: string, options: { callGraph?: boolean } = {}): PerfRecording {
  const child: ChildProcess = spawn("perf", ["record", "-q", ...(options.callGraph ? ["-g"] : []), "-e", "cpu-clock", "-F", "1999", "-p", String(pid), "-o", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr += c));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", (err) => reject(new Error(`cannot run perf (apt-get install linux-perf): ${err.message}`)));
    child.on("exit", (code) => resolve(code));
  });
  return {
    async stop() {
      child.kill("SIGINT");
      const code = await exited;
      if (code !== 0 && code !== null) throw new Error(`perf record -p ${pid} exited with ${code}: ${stderr.trim()}`);
      return splitOf(file);
    },
  };
}

/** The JIT_CODE_LOAD records of a JITDump file (the format of perf's jitdump.h) as perf map lines. */
export function jitDumpToPerfMap(dump: Uint8Array): string {
  const view = new DataView(dump.buffer, dump.byteOffset, dump.byteLength);
  const text = new TextDecoder();
  const lines: string[] = [];
  let at = view.getUint32(8, true); // the header's size
  while (at + 16 <= dump.length) {
    const id = view.getUint32(at, true);
    const size = view.getUint32(at + 4, true);
    if (size === 0 || at + size > dump.length) break;
    if (id === 0) {
      // id, size, timestamp; pid, tid, vma, code address, code size, code index; the name; the code.
      const address = view.getBigUint64(at + 32, true);
      const codeSize = view.getBigUint64(at + 40, true);
      const nameStart = at + 56;
      const nameEnd = dump.indexOf(0, nameStart);
      lines.push(`${address.toString(16)} ${codeSize.toString(16)} ${text.decode(dump.subarray(nameStart, nameEnd)).replace(/\n/g, " ")}`);
    }
    at += size;
  }
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}

const THUNK = /^JSC-\w*Thunk:/;

export const NO_JAVASCRIPT = "(no JavaScript on the stack: event loop, TLS, sockets, GC, microtasks)";

/**
 * `perf script -F tid,ip,sym,dso` of a recording with call graphs: the busiest thread's
 * samples, each charged to the nearest JIT frame on its stack (perf names JIT code from
 * /tmp/perf-<pid>.map); `below` counts those whose own frame was native code or the kernel.
 */
export function chargeToNearestJs(script: string): { byFunction: Map<string, { all: number; below: number }>; samples: number; mainThread: number } {
  const byFunction = new Map<string, { all: number; below: number }>();
  const stacks: Array<{ tid: string; frames: Array<{ sym: string; dso: string }> }> = [];
  for (const block of script.split(/\n\s*\n/)) {
    const lines = block.split("\n").filter((l) => l.trim() !== "");
    if (lines.length === 0) continue;
    const frames = lines.slice(1).map((l) => {
      const m = /^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$/.exec(l);
      return { sym: m?.[1] ?? "", dso: m?.[2] ?? "" };
    });
    stacks.push({ tid: lines[0]!.trim().split(/\s+/)[0]!, frames });
  }
  const perThread = new Map<string, number>();
  for (const s of stacks) perThread.set(s.tid, (perThread.get(s.tid) ?? 0) + 1);
  const main = [...perThread].sort((a, b) => b[1] - a[1])[0]?.[0];
  let mainThread = 0;
  for (const s of stacks) {
    if (s.tid !== main) continue;
    mainThread++;
    // A call into native code from JavaScript passes through a thunk: charge the function behind it.
    const jit = s.frames.find((f) => f.dso.includes("perf-") && !THUNK.test(f.sym)) ?? s.frames.find((f) => f.dso.includes("perf-"));
    const name = jit ? jit.sym : NO_JAVASCRIPT;
    const entry = byFunction.get(name) ?? { all: 0, below: 0 };
    entry.all++;
    if (jit && s.frames[0] !== jit) entry.below++;
    byFunction.set(name, entry);
  }
  return { byFunction, samples: stacks.length, mainThread };
}
