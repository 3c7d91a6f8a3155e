// Retry cost: the reference scenario under load. An orders sidecar balances round robin
// over two payments sidecars; B1's app resets every Nth connection (when flapping), B2's is
// healthy. The policy retries on reset and 5xx; outlier detection is left out so B1 keeps
// receiving its share and every one of its failures costs a retry (the worst case for
// retries, the best for measuring them).

import { join } from "node:path";
import { startProcess } from "../support/processes.ts";
import type { BenchEnv, PathHandle } from "./path.ts";
import { endpointsYaml, PAYMENTS_ID, startSidecar, type RemoraRuntime } from "./remora-pair.ts";

export const RETRY_POLICY = `policies:
  - route:
      destination: payments
      load_balancer: round_robin
      retry_policy:
        retry_on: connect-failure,5xx,reset
        num_retries: 2
        per_try_timeout: 250ms
      tls:
        mode: ISTIO_MUTUAL
`;
const RESET_EVERY = 4;

export interface RetryTopology {
  path: PathHandle;
  policy: string;
  flapping: string;
  setFlapping(on: boolean): Promise<void>;
  /** remora_retries_total of the orders sidecar. */
  retries(): Promise<number>;
  stop(): Promise<void>;
}

export async function startRetryTopology(env: BenchEnv, runtime: RemoraRuntime): Promise<RetryTopology> {
  const flapApp = await startProcess({
    name: "app-b1",
    command: process.execPath,
    args: [join(env.root, "bench/upstream-app.ts"), "--reset-every", String(RESET_EVERY), "--healthy"],
    logFile: join(env.dir, "app-b1.log"),
    ready: { line: (r) => typeof r.listening === "string" },
  });
  const b1 = await startSidecar({ env, runtime, name: `payments-b1-${runtime}`, service: "payments", app: flapApp.readyLine!.listening as string });
  const b2 = await startSidecar({ env, runtime, name: `payments-b2-${runtime}`, service: "payments", app: env.app });
  const orders = await startSidecar({
    env,
    runtime,
    name: `orders-retry-${runtime}`,
    service: "orders",
    extraYaml: endpointsYaml("payments", [b1.readyLine!.inbound as string, b2.readyLine!.inbound as string], PAYMENTS_ID) + RETRY_POLICY,
  });
  const ready = orders.readyLine!;
  const admin = ready.admin as string;
  let flapping = false;
  const proxies = [orders, b1, b2];
  return {
    path: {
      name: `remora-${runtime}-retry`,
      kind: "remora",
      runtime: String(ready.runtime ?? runtime),
      entry: ready.outbound as string,
      host: "payments",
      proxies,
      idleRssMiB: proxies.map((p) => p.stats().rssMiB),
      stop: async () => {},
    },
    policy: RETRY_POLICY.trim(),
    flapping: `B1's app resets the connection of every ${RESET_EVERY}th request (${100 / RESET_EVERY}% of B1's attempts, ~${100 / RESET_EVERY / 2}% of all first attempts)`,
    async setFlapping(on) {
      if (on !== flapping) flapApp.child.kill("SIGUSR2");
      flapping = on;
      await new Promise((r) => setTimeout(r, 200));
    },
    async retries() {
      const text = await (await fetch(`http://${admin}/metrics`)).text();
      return [...text.matchAll(/^remora_retries_total\{[^}]*\}\s+([\d.e+]+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    },
    stop: async () => void (await Promise.all([...proxies, flapApp].map((p) => p.stop()))),
  };
}
