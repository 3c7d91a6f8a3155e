// Steps every pod test takes: start a long-running process in a pod and wait for its ready
// line, run `remora` against the control plane, read a sidecar's admin API, poll until true.

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { onJsonLines } from "../../../src/cli/json-lines.ts";
import { NODE, REMORA, type Exec, type Pod, type PodNetwork } from "./pods.ts";

export interface LongProcess {
  label: string;
  pod: Pod | undefined;
  uid?: number | undefined;
  cmd: string;
  args: string[];
  /** Called with each line of stdout and stderr; true once the process is ready. */
  ready: (line: string) => boolean;
  env?: Record<string, string>;
}

export interface Steps {
  /** Resolves once a line satisfies `ready`; fails with the last 20 lines if it exits or takes 30 s. */
  startLong(p: LongProcess): Promise<ChildProcess>;
  /** `remora ARGS --control … --data …` as root in the control-plane pod; must exit 0. */
  remora(args: string[]): Promise<Exec>;
  /** GET on the sidecar admin port (15000) inside `p`. */
  admin(p: Pod, path: string): Promise<string>;
}

export function podSteps(o: {
  net: () => PodNetwork;
  /** Every line of every started process, by label, for the failure report. */
  logs: Map<string, string[]>;
  /** Started processes are pushed here at once, so teardown reaches one that never got ready. */
  started?: ChildProcess[];
  controlPod: () => Pod;
  controlUrl: () => string;
  dataDir: () => string;
}): Steps {
  return {
    startLong(p) {
      const child = o.net().spawn(p.pod, { ...(p.uid === undefined ? {} : { uid: p.uid }), env: p.env ?? {} }, p.cmd, p.args);
      o.started?.push(child);
      const lines: string[] = [];
      o.logs.set(p.label, lines);
      return new Promise((resolve, reject) => {
        let done = false;
        const settle = (error?: Error) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          if (error) reject(new Error(`${error.message}\n${lines.slice(-20).join("\n")}`));
          else resolve(child);
        };
        const timer = setTimeout(() => settle(new Error(`${p.label} not ready in 30 s`)), 30_000);
        const read = (stream: NodeJS.ReadableStream, prefix: string) =>
          onJsonLines(stream, (_rec, line) => take(prefix, line), (line) => take(prefix, line));
        const take = (prefix: string, line: string) => {
          lines.push(prefix + line);
          if (p.ready(line)) settle();
        };
        read(child.stdout!, "");
        read(child.stderr!, "stderr: ");
        child.once("exit", (code, signal) => settle(new Error(`${p.label} exited (${code ?? signal})`)));
      });
    },
    async remora(args) {
      const r = await o.net().exec(o.controlPod(), {}, NODE, [REMORA, ...args, "--control", o.controlUrl(), "--data", o.dataDir()]);
      assert.equal(r.code, 0, `remora ${args.join(" ")}: ${r.stderr}`);
      return r;
    },
    async admin(p, path) {
      const r = await o.net().exec(p, {}, "curl", ["-sS", "--max-time", "5", `http://127.0.0.1:15000${path}`]);
      assert.equal(r.code, 0, `admin ${path} in ${p.name}: ${r.stderr}`);
      return r.stdout;
    },
  };
}

/** Polls `probe` every 200 ms until it returns a value (a throw counts as not yet). */
export async function until<T>(what: string, limitMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`${what} within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
