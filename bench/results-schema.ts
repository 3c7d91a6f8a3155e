// The shape of bench/results/<date>-<runtimes>.json, written by bench/run.ts and read by
// bench/report.ts.

import type { HandshakeResult, LoadResult } from "./load/spec.ts";
import type { WrkResult } from "./load/wrk.ts";
import type { Machine } from "./support/machine.ts";
import type { Verdict } from "./validity.ts";

export interface PathInfo {
  name: string;
  kind: "direct" | "remora" | "haproxy";
  runtime?: string;
  adapter?: string;
  /** `remora version` under this path's runtime. */
  version?: string;
  proxies: string[];
  idleRssMiB: number[];
  /** VmHWM of each proxy at the end of the run. */
  peakRssMiB: number[];
}

export interface LoadRow {
  path: string;
  phase: "fixed" | "max" | "sustained" | "retry";
  /** retry phase: "healthy" or "flapping". */
  label?: string;
  load: LoadResult;
  verdict: Verdict;
  /** CPU of the path's proxies over the whole generator run (warm-up and drain included). */
  proxyCpuSeconds: number;
  /** The same per proxy, in the order of PathInfo.proxies (absent in results before 2026-11-26). */
  proxyCpuSecondsEach?: number[];
  /** Requests sent over that same span. */
  requestsSent: number;
  generatorWallMs: number;
  /** Proxy CPU seconds per 1,000 requests = cores per 1,000 rps. */
  cpuPer1000: number | null;
  /** Retries counted by the client sidecar (retry phase). */
  retries?: number;
}

export interface HandshakeRow {
  path: string;
  result: HandshakeResult;
  serverCpuSeconds: number;
  /** Handshakes per second of server CPU: new connections per second per core. */
  perCoreSec: number;
}

export interface WrkRow {
  path: string;
  wrk: WrkResult;
  /** The harness's own closed-loop maximum on the same path, for comparison. */
  harnessMaxRps: number | null;
}

export interface BenchResults {
  date: string;
  mode: "quick" | "full";
  machine: Machine;
  settings: Record<string, unknown>;
  paths: PathInfo[];
  loads: LoadRow[];
  wrk: WrkRow[];
  handshakes: HandshakeRow[];
  retry?: { runtime: string; policy: string; flapping: string };
  /** The compiled single binary's idle sidecars (the form issue 8's memory target names). */
  binary?: BinaryIdle;
  notes: string[];
}

export interface BinaryIdle {
  /** Relative to the repository, e.g. dist/remora-bun. */
  file: string;
  sizeMiB: number;
  /** `remora version` of the binary. */
  version: string;
  proxies: string[];
  idleRssMiB: number[];
}
