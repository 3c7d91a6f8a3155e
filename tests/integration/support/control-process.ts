// A real `remora control` process for integration tests: started on a free loopback port,
// ready once it logs "control plane ready", killable with SIGKILL to test crash recovery.

import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { onJsonLines, REMORA } from "./processes.ts";

export interface ControlProcess {
  child: ChildProcess;
  url: string;
  address: string;
  logs: Record<string, unknown>[];
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
}

export function startControl(args: string[], timeoutMs = 20_000): Promise<ControlProcess> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [REMORA, "control", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const logs: Record<string, unknown>[] = [];
    let stderr = "";
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    const t = setTimeout(() => (child.kill("SIGKILL"), fail(new Error(`control plane not ready in ${timeoutMs} ms: ${stderr}`))), timeoutMs);
    child.stderr!.on("data", (c) => (stderr += c));
    onJsonLines(child.stdout!, (rec) => {
          logs.push(rec);
          if (rec.msg === "control plane ready") {
            clearTimeout(t);
            const address = rec.address as string;
            ok({
              child,
              url: `https://${address}`,
              address,
              logs,
              kill9: async () => {
                if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
                await exited;
              },
              stop: async () => {
                if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
                await exited;
              },
            });
          }
    });
    child.once("exit", (code) => (clearTimeout(t), fail(new Error(`control plane exited ${code}: ${stderr}`))));
  });
}
