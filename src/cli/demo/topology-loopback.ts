// The demo on loopback: every listener on 127.0.0.1 with a port of the kernel's choosing,
// the payments apps and the orders client in the demo's own process, no root needed.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ADMIN_TOKEN_FILE, ROOT_CERT_FILE } from "../../control/data-dir.ts";
import { ordersApp, startPaymentsApp } from "../demo-apps.ts";
import { REPLICAS, type DemoMesh, type Topology } from "./mesh.ts";
import type { Output } from "./output.ts";

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
    ordersApp: "orders app (this process)",
    callPath: (orders) => `plain HTTP to its sidecar at ${orders.outbound}; no TLS code in the app`,
    explore,
  };
}

function explore(mesh: DemoMesh, out: Output): void {
  const { controlUrl, dataDir, sidecars } = mesh;
  const root = join(dataDir, ROOT_CERT_FILE);
  out.say();
  out.say("--keep: everything stays up until Ctrl-C. To explore (`remora` is `npx remora` or `node bin/remora.js` in a checkout):");
  out.say(`  export REMORA_CONTROL=${controlUrl} REMORA_CA=${root} REMORA_ADMIN_TOKEN=$(cat ${join(dataDir, ADMIN_TOKEN_FILE)})`);
  out.say(`  remora get proxies --control ${controlUrl} --data ${dataDir}`);
  out.say(`  remora get endpoints --control ${controlUrl} --data ${dataDir}`);
  out.say(`  remora get policies --control ${controlUrl} --data ${dataDir}`);
  out.say(`  curl -x http://${sidecars.orders.outbound} -X POST http://payments/charge     # a call as the orders app makes it`);
  for (const s of Object.values(sidecars)) {
    out.say(`  ${s.name.padEnd(6)} sidecar admin http://${s.admin}/  (/metrics /endpoints /config /events; curl -N http://${s.admin}/events)`);
  }
  const still = REPLICAS.filter((r) => mesh.apps[r].flapping);
  if (still.length) out.say(`  ${still.join(" and ")} ${still.length > 1 ? "are" : "is"} still flapping: watch sidecar A retry and eject with curl -N http://${sidecars.orders.admin}/events`);
  out.say(`  spans go to the in-process collector at ${mesh.collector.url}/v1/traces (${mesh.collector.spans.length} so far)`);
  out.record("keep", { control: controlUrl, data: dataDir, ca: root, sidecars: Object.fromEntries(Object.values(sidecars).map((s) => [s.name, { admin: s.admin, outbound: s.outbound, inbound: s.inbound ?? null, pid: s.child.pid }])) });
}
