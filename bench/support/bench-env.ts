// What every bench script starts from: a scratch folder, the orders and payments SVIDs made
// by `remora certs`, and the bench's upstream app.

import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BenchEnv } from "../paths/path.ts";
import { remoraCommand } from "../paths/remora-pair.ts";
import { startProcess, type BenchProcess } from "./processes.ts";

const BENCH_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface PairBench {
  env: BenchEnv;
  app: BenchProcess;
  /** Stops the app and removes the scratch folder (pass keep to leave it for a look). */
  close(options?: { keep?: boolean }): Promise<void>;
}

/**
 * A scratch folder named after `purpose`, certificates made by the sources at `root` (a copy
 * under comparison, or this checkout), and the upstream app from this checkout, so every copy
 * measured is served by the same app.
 */
export async function startPairBench(purpose: string, root: string = BENCH_ROOT): Promise<PairBench> {
  const dir = await mkdtemp(join(tmpdir(), `remora-${purpose}-`));
  try {
    const certs = join(dir, "certs");
    await mkdir(certs);
    const { command, args } = remoraCommand(root, "node");
    execFileSync(command, [...args, "certs", "--out", certs, "orders", "payments"], { stdio: "ignore" });
    const app = await startProcess({
      name: "app",
      command: process.execPath,
      args: [join(BENCH_ROOT, "bench/upstream-app.ts")],
      logFile: join(dir, "app.log"),
      ready: { line: (r) => typeof r.listening === "string" },
    });
    return {
      env: { root, dir, app: app.readyLine!.listening as string, certs },
      app,
      async close(options) {
        await app.stop();
        if (!options?.keep) await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
