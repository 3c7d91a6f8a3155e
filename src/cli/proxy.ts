// `remora proxy --config FILE`: one sidecar from a static config file. The file and the
// certificates it names are watched: a valid change is applied in place, an invalid one
// is logged and the last good config keeps serving.

import { stat } from "node:fs/promises";
import pino from "pino";
import { parse } from "./args.ts";
import { loadStaticConfig, type LoadedConfig } from "./load-config.ts";
import { startSidecar } from "../sidecar/sidecar.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { systemClock } from "../core/system-clock.ts";

export const usage = `remora proxy --config FILE

Runs one sidecar: outbound listener (plain HTTP from the app), inbound listener (mTLS from
other sidecars, forwarded to the app), admin server (/ready /live /metrics /config /endpoints).

  --config FILE     static config (YAML); see README "Static configuration"
  --watch-interval  how often to check the config and certificate files for changes (default 2s)`;

export async function proxyCommand(argv: string[]): Promise<number> {
  const { values } = parse("proxy", argv, { config: { type: "string" }, "watch-interval": { type: "string" }, help: { type: "boolean" } });
  if (values.help) return console.log(usage), 0;
  if (!values.config) throw new (await import("./args.ts")).UsageError("remora proxy: --config FILE is required (the control-plane mode arrives with `remora control`)");
  const path = values.config;
  let loaded: LoadedConfig = await loadStaticConfig(path);
  const log = pino({ base: { service: "remora-sidecar" } });
  const runtime = await loadRuntime();
  const sidecar = await startSidecar(loaded.settings, { runtime, clock: systemClock, random: Math.random, log });

  const mtimes = async (files: string[]) => (await Promise.all(files.map((f) => stat(f).then((s) => s.mtimeMs, () => 0)))).join(",");
  let seen = await mtimes(loaded.files);
  let reloading = false;
  const reload = async (why: string) => {
    if (reloading) return;
    reloading = true;
    try {
      const next = await loadStaticConfig(path);
      if (next.settings.identity.certPem !== loaded.settings.identity.certPem || next.settings.identity.bundlePem !== loaded.settings.identity.bundlePem) {
        sidecar.setIdentity(next.settings.identity);
      }
      sidecar.applyMesh(next.settings.mesh);
      loaded = next;
    } catch (e) {
      log.error({ file: path, reason: why, error: (e as Error).message }, "config rejected; keeping the last good config");
    } finally {
      seen = await mtimes(loaded.files);
      reloading = false;
    }
  };
  const intervalMs = 2000;
  const timer = setInterval(async () => {
    const now = await mtimes(loaded.files);
    if (now !== seen) await reload("file changed");
  }, intervalMs);
  process.on("SIGHUP", () => void reload("SIGHUP"));

  await new Promise<void>((done) => {
    const stop = async (signal: string) => {
      log.info({ signal, drain_ms: loaded.settings.drainMs }, "draining");
      clearInterval(timer);
      await sidecar.close();
      done();
    };
    process.once("SIGTERM", () => void stop("SIGTERM"));
    process.once("SIGINT", () => void stop("SIGINT"));
  });
  return 0;
}
