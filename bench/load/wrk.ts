// wrk as the external cross-check of the bench's own generator: closed loop, the same
// connection count and Host header, its Requests/sec compared with the harness's maximum.

import { execFile } from "node:child_process";

export interface WrkResult {
  rps: number;
  requests: number;
  /** Socket errors and non-2xx/3xx responses wrk reported. */
  errors: number;
  latencyAvgMs: number;
  /** wrk --latency's 50/90/99 % (of its closed loop: coordinated omission included). */
  p50Ms: number;
  p99Ms: number;
  raw: string;
}

function ms(text: string | undefined): number {
  if (!text) return NaN;
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const scale = { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as "us" | "ms" | "s" | "m"];
  return Number(m[1]) * scale;
}

export function runWrk(o: { entry: string; host: string; path: string; connections: number; seconds: number }): Promise<WrkResult> {
  const args = ["-t1", `-c${o.connections}`, `-d${o.seconds}s`, "--latency", "-H", `Host: ${o.host}`, `http://${o.entry}${o.path}`];
  return new Promise((ok, fail) => {
    execFile("wrk", args, { timeout: (o.seconds + 30) * 1000 }, (err, stdout) => {
      if (err && !stdout) return fail(err);
      const num = (re: RegExp) => Number(re.exec(stdout)?.[1] ?? NaN);
      const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
      const errors = (socketErrors ? socketErrors.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + (num(/Non-2xx or 3xx responses: (\d+)/) || 0);
      ok({
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        requests: num(/(\d+) requests in/),
        errors,
        latencyAvgMs: ms(/Latency\s+(\S+)/.exec(stdout)?.[1]),
        p50Ms: ms(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1]),
        p99Ms: ms(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1]),
        raw: stdout,
      });
    });
  });
}
