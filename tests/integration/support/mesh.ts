// A control plane in a temp directory and sidecars enrolled with it by join token: the
// setup every control-plane integration test shares. Cleanups run in reverse order.

import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { json, remora, startProxyWith, type Proxy } from "./processes.ts";
import { freePort, startControl, type ControlProcess } from "./control-process.ts";

export interface TestMesh {
  readonly dir: string;
  /** The control plane's data directory (root.pem, admin-token). */
  readonly data: string;
  /** Replaced by restartControl(). */
  control: ControlProcess;
  /** `--control URL --data DIR`, for admin commands. */
  admin(): string[];
  token(service: string): Promise<string>;
  /** Writes `text` to a file and `remora apply`s it; asserts success. */
  apply(name: string, text: string): Promise<void>;
  /** `remora proxy --control …` enrolled as `service`, on ephemeral ports; with `app`, an inbound listener in front of it. */
  sidecar(service: string, o?: { app?: string; args?: string[] }): Promise<Proxy>;
  /** Starts the control plane again on the same directory and address (after `control.kill9()`). */
  startControlAgain(): Promise<void>;
  defer(fn: () => unknown): void;
  close(): Promise<void>;
}

export async function startTestMesh(prefix: string, controlArgs: string[] = []): Promise<TestMesh> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const data = join(dir, "cp");
  const cleanup: (() => unknown)[] = [];
  const start = async (listen: string) => startControl(["--data", data, "--listen", listen, ...controlArgs]);
  const mesh: TestMesh = {
    dir,
    data,
    control: await start(`127.0.0.1:${await freePort()}`),
    admin: () => ["--control", mesh.control.url, "--data", data],
    async token(service) {
      const r = await remora(["token", "--service", service, ...mesh.admin()]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout.trim();
    },
    async apply(name, text) {
      const file = join(dir, name);
      await writeFile(file, text);
      const r = await remora(["apply", "-f", file, ...mesh.admin()]);
      assert.equal(r.code, 0, r.stderr);
    },
    async sidecar(service, o = {}) {
      const args = ["--control", mesh.control.url, "--ca", join(data, "root.pem"), "--token", await mesh.token(service), "--service", service, "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
      if (o.app) args.push("--app", o.app, "--inbound", "127.0.0.1:0");
      const p = await startProxyWith([...args, ...(o.args ?? [])]);
      cleanup.push(() => p.stop());
      return p;
    },
    async startControlAgain() {
      mesh.control = await start(mesh.control.address);
    },
    defer: (fn) => void cleanup.push(fn),
    async close() {
      for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => {});
      await mesh.control.stop().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
  return mesh;
}

/** Polls a sidecar's admin /config until `ok` holds; answers how long that took, fails the test past `limitMs`. */
export async function untilConfig<C>(p: Proxy, ok: (c: C) => boolean, limitMs: number): Promise<number> {
  const start = Date.now();
  for (;;) {
    const c = await json<C>(p.admin, "/config").catch(() => undefined);
    if (c && ok(c)) return Date.now() - start;
    if (Date.now() - start > limitMs) assert.fail(`condition not met within ${limitMs} ms: ${JSON.stringify(c)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
