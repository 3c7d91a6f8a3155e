// Idle memory of the compiled single binary (dist/remora-bun), the form issue 8's memory
// target names: `npm run build:bin`, then a payments and an orders sidecar from it with the
// same configs as the remora-bun path, RSS read once start-up has settled, before any
// traffic. From source, a sidecar also holds the transpiled modules Bun keeps per file.

import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import type { BinaryIdle } from "../results-schema.ts";
import type { BenchEnv } from "./path.ts";
import { endpointsYaml, PAYMENTS_ID, startSidecar } from "./remora-pair.ts";

const BINARY = "dist/remora-bun";
const SETTLE_MS = 2000;

export async function measureBinaryIdle(env: BenchEnv, log: (msg: string) => void): Promise<BinaryIdle | undefined> {
  try {
    execFileSync(process.execPath, [join(env.root, "scripts/build-bin.ts")], { cwd: env.root, stdio: "ignore" });
  } catch (err) {
    log(`binary: npm run build:bin failed (${(err as Error).message.split("\n")[0]}); its idle memory is not measured`);
    return undefined;
  }
  const executable = join(env.root, BINARY);
  const version = execFileSync(executable, ["version"], { encoding: "utf8" }).trim();
  const payments = await startSidecar({ env, runtime: "bun", executable, name: "payments-binary", service: "payments", app: env.app });
  const orders = await startSidecar({
    env,
    runtime: "bun",
    executable,
    name: "orders-binary",
    service: "orders",
    extraYaml: endpointsYaml("payments", [payments.readyLine!.inbound as string], PAYMENTS_ID),
  });
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const proxies = [orders, payments];
    const idleRssMiB = proxies.map((p) => p.stats().rssMiB);
    log(`binary: ${BINARY} idle RSS ${idleRssMiB.map((v) => v.toFixed(1)).join(", ")} MiB (orders, payments)`);
    return { file: BINARY, sizeMiB: statSync(executable).size / 2 ** 20, version, proxies: proxies.map((p) => p.name), idleRssMiB };
  } finally {
    await Promise.all([orders.stop(), payments.stop()]);
  }
}
