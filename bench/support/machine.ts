// The machine and tool versions recorded with every result: numbers from two machines are
// not comparable, so each result file says where it was taken.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem, loadavg, release } from "node:os";
import { join } from "node:path";

export interface Machine {
  cores: number;
  cpuModel: string;
  memGiB: number;
  kernel: string;
  /** 1-minute load average when the run started: other work on the machine skews numbers. */
  loadAvgAtStart: number;
  versions: Record<string, string>;
}

function firstLine(command: string, args: string[]): string {
  try {
    const out = execFileSync(command, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
    return out.split("\n").find((l) => l.trim() !== "")?.trim() ?? "";
  } catch (e) {
    // wrk -v prints its version and exits 1.
    const out = String((e as { stdout?: string }).stdout ?? "") + String((e as { stderr?: string }).stderr ?? "");
    return out.split("\n").find((l) => l.trim() !== "")?.trim() ?? "not available";
  }
}

export function describeMachine(root: string): Machine {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "unknown";
  const bin = (name: string) => join(root, "node_modules/.bin", name);
  return {
    cores: cpus().length,
    cpuModel: model.trim(),
    memGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadAvgAtStart: loadavg()[0] ?? 0,
    versions: {
      node: process.versions.node,
      bun: firstLine(bin("bun"), ["--version"]),
      deno: firstLine(bin("deno"), ["--version"]).replace(/^deno /, ""),
      haproxy: firstLine("haproxy", ["-v"]).replace(/^HAProxy version (\S+).*/, "$1"),
      wrk: firstLine("wrk", ["-v"]).replace(/^wrk (\S+).*/, "$1"),
      h2load: firstLine("h2load", ["--version"]),
      openssl: process.versions.openssl ?? "",
    },
  };
}

/** haproxy -v's version number, e.g. "2.6.12-1+deb12u4". */
export function haproxyVersion(m: Machine): string {
  return m.versions.haproxy ?? "unknown";
}
