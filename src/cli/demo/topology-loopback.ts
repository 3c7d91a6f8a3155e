// The demo on loopback: every listener on 127.0.0.1 with a port of the kernel's choosing,
// the payments apps and the orders client in the demo's own process, no root needed.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT_CERT_FILE } from "../../control/data-dir.ts";
import { ordersApp, startPaymentsApp } from "../demo-apps.ts";
import { REPLICAS, type Topology } from "./mesh.ts";

export function loopbackTopology(): Topology {
  return {
    where: "on loopback",
    controlListen: "127.0.0.1:0",
    collectorHost: "127.0.0.1",
    async makeDir(cleanup) {
      const dir = await mkdtemp(join(tmpdir(), "remora-demo-"));
      cleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
      return dir;
    },
    trustBundle: async (dataDir) => join(dataDir, ROOT_CERT_FILE),
    async startApp(name, flapping, cleanup) {
      const app = await startPaymentsApp(name, flapping);
      cleanup.defer(`stop payments app ${name}`, () => app.close());
      return {
        name,
        address: app.address,
        get flapping() {
          return app.flapping;
        },
        setFlapping: async (on) => void (app.flapping = on),
        counts: async () => ({ hits: app.hits, resets: app.resets }),
        close: () => app.close(),
      };
    },
    async sidecar(_name, app, token) {
      const args = ["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
      if (app) args.push("--app", app.address, "--inbound", "127.0.0.1:0");
      return { args, spawn: { env: { ...(process.env as Record<string, string>), REMORA_TOKEN: token } } };
    },
    ordersClient: (orders) => ordersApp(orders.outbound),
    names: (mesh) => REPLICAS.map((r) => [mesh.apps[r].address, `${r}'s app`]),
  };
}
