// CPU time and memory of a process from /proc (Linux): utime + stime from /proc/PID/stat,
// resident and peak resident set (VmRSS, VmHWM) from /proc/PID/status.

import { readFileSync } from "node:fs";

export interface ProcStats {
  /** User + system CPU seconds since the process started. */
  cpuSeconds: number;
  rssMiB: number;
  /** Peak RSS over the process's life. */
  peakRssMiB: number;
}

/** USER_HZ: 100 on every Linux the bench targets (getconf CLK_TCK). */
const CLK_TCK = 100;

export function procStats(pid: number): ProcStats {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { cpuSeconds: (utime + stime) / CLK_TCK, rssMiB: kib("VmRSS") / 1024, peakRssMiB: kib("VmHWM") / 1024 };
}

/** Sum of CPU seconds over several processes. */
export function cpuOf(stats: readonly ProcStats[]): number {
  return stats.reduce((a, s) => a + s.cpuSeconds, 0);
}
