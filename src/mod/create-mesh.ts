// createMesh(): a mesh client for a program that cannot run a sidecar, from a static
// config (file or object) or enrolled with the control plane.

import { readFile } from "node:fs/promises";
import type { Clock, Random } from "../core/clock.ts";
import type { EventSink } from "../core/events.ts";
import type { DestinationStatus } from "../core/pipeline.ts";
import { RemoraError } from "../core/errors.ts";
import { systemClock } from "../core/system-clock.ts";
import type { Runtime } from "../runtime/types.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { silentLogger, type Logger } from "../sidecar/logger.ts";
import { createMeshClient } from "./mesh-client.ts";
import { enroll, type ControlOptions } from "./control-mode.ts";
import { loadStatic, type StaticConfig } from "./static-config.ts";

export type { ControlOptions } from "./control-mode.ts";
export type { StaticConfig } from "./static-config.ts";

interface CommonOptions {
  /** Logs of the control session (enrolment, renewal, config applied); default silent. pino fits. */
  log?: Logger;
  /** Every mesh event (attempts, retries, ejections), for programs that want to watch. */
  onEvent?: EventSink;
  /** Injected for tests; default the runtime's clock, Math.random and the detected adapter. */
  clock?: Clock;
  random?: Random;
  runtime?: Runtime;
}

export type MeshOptions =
  | (CommonOptions & { control: ControlOptions; config?: never })
  /** A sidecar config file path (YAML) or the same document as an object. */
  | (CommonOptions & { config: string | StaticConfig; control?: never });

export interface Mesh {
  /** A fetch that resolves logical names (`http://payments/charge`), balances, retries, ejects and speaks mTLS to the peer's inbound sidecar. */
  fetch(input: Request | string | URL, init?: RequestInit): Promise<Response>;
  /** Prometheus text exposition of this client's golden metrics. */
  metrics(): string;
  /** Destinations with their policy and endpoint health (ejections, active requests). */
  destinations(): DestinationStatus[];
  /** The SPIFFE ID this program presents. */
  readonly identity: string;
  /** Deregisters (control mode) and closes pooled connections. */
  close(): Promise<void>;
}

/** How long createMesh waits for the control plane's first config. */
const FIRST_CONFIG_TIMEOUT_MS = 30_000;

export async function createMesh(options: MeshOptions): Promise<Mesh> {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? Math.random;
  const runtime = options.runtime ?? (await loadRuntime());
  const log = options.log ?? silentLogger;
  const deps = { runtime, clock, random, ...(options.onEvent ? { onEvent: options.onEvent } : {}) };

  if (options.config !== undefined) {
    const loaded = await loadStatic(options.config, clock.now());
    const client = createMeshClient(loaded.material, loaded.view, { ...deps, ...(loaded.trustDomain ? { trustDomain: loaded.trustDomain } : {}) });
    return wrap(client, async () => client.close());
  }
  if (options.control === undefined) {
    throw new RemoraError("ERR_CONFIG_INVALID", "createMesh needs { control: { url, ca, token, service } } or { config: FILE | object }.");
  }

  const c = options.control;
  const caPem = c.ca.includes("-----BEGIN ") ? c.ca : await readCa(c.ca);
  const session = await enroll(c, caPem, { runtime, clock, random, log });
  const client = createMeshClient(session.material, { policies: [], endpoints: {} }, { ...deps, trustDomain: session.trustDomain, ...(session.discover ? { discover: session.discover } : {}) });
  const timeout = clock.timeout(FIRST_CONFIG_TIMEOUT_MS);
  try {
    await Promise.race([
      session.start(client),
      new Promise<never>((_, reject) => timeout.addEventListener("abort", () => reject(new RemoraError("ERR_CONTROL_UNREACHABLE",
        `no config arrived from the control plane ${String(c.url)} within ${FIRST_CONFIG_TIMEOUT_MS / 1000} s; check it is running and that "${c.service}" may join.`)), { once: true })),
    ]);
  } catch (e) {
    await session.close().catch(() => {});
    client.close();
    throw e;
  }
  return wrap(client, async () => {
    await session.close();
    client.close();
  });
}

function wrap(client: ReturnType<typeof createMeshClient>, close: () => Promise<void>): Mesh {
  let closed: Promise<void> | undefined;
  return {
    fetch: (input, init) => client.fetch(input, init),
    metrics: () => client.metrics(),
    destinations: () => client.destinations(),
    get identity() {
      return client.identity();
    },
    close: () => (closed ??= close()),
  };
}

async function readCa(path: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new RemoraError("ERR_FILE", `cannot read control.ca ${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message}.`);
  }
}

