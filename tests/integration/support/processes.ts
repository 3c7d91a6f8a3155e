// Real remora processes for integration tests: spawned with this runtime's binary, their
// JSON log lines collected, and always killed at the end of the test.

import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createServer, request, type Server } from "node:http";
import { onJsonLines } from "../../../src/cli/json-lines.ts";
import { stopChild } from "./signal.ts";

export const REMORA = fileURLToPath(new URL("../../../bin/remora.js", import.meta.url));

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `remora ARGS` to completion (bounded by timeoutMs). */
export function remora(args: string[], timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [REMORA, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const t = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", fail);
    child.on("close", (code) => (clearTimeout(t), ok({ code, stdout, stderr })));
  });
}

export interface Proxy {
  child: ChildProcess;
  logs: Record<string, unknown>[];
  outbound: string;
  inbound?: string;
  admin: string;
  stop(): Promise<void>;
}

/** Starts `remora proxy --config FILE` and resolves once it logged "sidecar ready". */
export function startProxy(config: string, timeoutMs = 15_000): Promise<Proxy> {
  return startProxyWith(["--config", config], timeoutMs);
}

/** Starts `remora proxy ARGS` and resolves once it logged "sidecar ready". */
export function startProxyWith(args: string[], timeoutMs = 15_000): Promise<Proxy> {
  const config = args.join(" ");
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [REMORA, "proxy", ...args], { stdio: ["ignore", "pipe", "pipe"] });
    const logs: Record<string, unknown>[] = [];
    let stderr = "";
    const t = setTimeout(() => (child.kill("SIGKILL"), fail(new Error(`proxy ${config} not ready in ${timeoutMs} ms: ${stderr}`))), timeoutMs);
    child.stderr!.on("data", (c) => (stderr += c));
    onJsonLines(child.stdout!, (rec) => {
          logs.push(rec);
          if (rec.msg === "sidecar ready") {
            clearTimeout(t);
            ok({
              child,
              logs,
              outbound: rec.outbound as string,
              inbound: rec.inbound as string | undefined,
              admin: rec.admin as string,
              stop: () => stop(child),
            });
          }
    });
    child.on("exit", (code) => (clearTimeout(t), fail(new Error(`proxy ${config} exited ${code}: ${stderr}`))));
  });
}

export { onJsonLines };

/** Stops by pid (support/signal.ts says why); a child already dead from a signal resolves at once. */
async function stop(child: ChildProcess): Promise<void> {
  await stopChild(child);
}

export interface TestApp {
  address: string;
  hits: number;
  mode: "ok" | "reset";
  lastHeaders?: Record<string, unknown>;
  close(): Promise<void>;
}

/** A plain HTTP app that answers 200 with its name, or resets every connection. */
export async function startApp(name: string, mode: "ok" | "reset" = "ok"): Promise<TestApp> {
  const app: TestApp = { address: "", hits: 0, mode, close: async () => {} };
  const server: Server = createServer((req, res) => {
    app.hits++;
    app.lastHeaders = req.headers;
    if (app.mode === "reset") return void req.socket.resetAndDestroy();
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end(name));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  app.address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  app.close = () => new Promise((ok) => (server.closeAllConnections(), server.close(() => ok())));
  return app;
}

export interface Reply {
  status: number;
  body: string;
  headers: Record<string, unknown>;
}

/** An HTTP/1.1 request to `via` (host:port) with the given target: absolute-form makes it a proxy request. */
export function http(via: string, target: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Reply> {
  const i = via.lastIndexOf(":");
  return new Promise((ok, fail) => {
    const req = request({ host: via.slice(0, i), port: Number(via.slice(i + 1)), path: target, method: init.method ?? "GET", headers: init.headers, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (body += c));
      res.on("end", () => ok({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.on("error", fail);
    req.end(init.body);
  });
}

export async function json<T>(via: string, path: string): Promise<T> {
  return JSON.parse((await http(via, path)).body) as T;
}
