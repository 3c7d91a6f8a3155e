// The demo in network-namespace pods (`remora demo --pods`, DESIGN.md "Transparent
// redirection"): this process runs in pod cp with the control plane and the collector; each
// payments app runs in its pod under the app uid, each sidecar under the proxy uid with
// `remora init`'s iptables rules, and the orders app is plain curl. The network itself is
// built and torn down by the parent (pods-runner.ts).

import { chmod, copyFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { RemoraError } from "../../core/errors.ts";
import { ROOT_CERT_FILE } from "../../control/data-dir.ts";
import { APP_UID, PROXY_UID, execIn, inNamespace, podEnv, podOf, runDir, writeHosts, type Pod } from "../pods/index.ts";
import { remoraCommand } from "../self.ts";
import type { CallResult } from "../demo-apps.ts";
import { spawnRemora } from "./children.ts";
import { REPLICAS, type DemoMesh, type ReplicaApp, type SidecarName, type Topology } from "./mesh.ts";
import { table } from "../table.ts";

/** The pods of the demo, on the run's bridge. */
export const POD_LAYOUT = [
  { name: "cp", ip: "10.250.0.2", role: "control plane, OTLP collector, this narrator (no sidecar)" },
  { name: "orders", ip: "10.250.0.10", role: "orders app (curl), sidecar A" },
  { name: "pay-b1", ip: "10.250.0.11", role: "payments B1 app, its sidecar" },
  { name: "pay-b2", ip: "10.250.0.12", role: "payments B2 app, its sidecar" },
] as const;
const CONTROL_PORT = 15010;
/** Istio's ports: what `remora init` redirects to, and where the admin API listens. */
const OUTBOUND_PORT = 15001;
const INBOUND_PORT = 15006;
const ADMIN_PORT = 15000;
const POD_OF: Record<SidecarName, string> = { orders: "orders", B1: "pay-b1", B2: "pay-b2" };
const BODY = JSON.stringify({ amount: 4200, currency: "EUR" });

/** `prefix` names the run's namespaces (rmr-<pid>-), given by the parent that built them. */
export function podsTopology(prefix: string): Topology {
  const pods = Object.fromEntries(POD_LAYOUT.map((p) => [p.name, podOf(prefix, p.name, p.ip)])) as Record<string, Pod>;
  const pod = (name: string) => pods[name]!;
  const ownerPid = Number(/^rmr-(\d+)-$/.exec(prefix)?.[1] ?? process.pid);
  const cp = pod("cp");
  const orders = pod("orders");
  const rules = new Map<SidecarName, string>();
  let vipLines: string[] = [];

  const remoraIn = async (p: Pod, args: string[]) => {
    const cmd = remoraCommand(args);
    return execIn(p.ns, {}, cmd.command, cmd.args, 30_000);
  };

  return {
    where: "in network-namespace pods",
    controlListen: `${cp.ip}:${CONTROL_PORT}`,
    collectorHost: cp.ip,
    ordersApp: `curl in pod orders, uid ${APP_UID}`,

    async makeDir(cleanup) {
      // Named for the parent's run, so a sweep after a crash finds it with the namespaces.
      const dir = runDir(ownerPid);
      cleanup.defer(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
      return dir;
    },

    async trustBundle(dataDir, dir) {
      // The data directory holds the CA key (root only); the sidecars' uid reads a copy of the root.
      const ca = join(dir, "root.pem");
      await copyFile(join(dataDir, ROOT_CERT_FILE), ca);
      await chmod(ca, 0o644);
      return ca;
    },

    async startApp(name, flapping, cleanup) {
      const p = pod(POD_OF[name]);
      const child = spawnRemora(`${name} app`, ["demo", "--pods-app", name, ...(flapping ? ["--pods-app-flapping"] : [])], undefined, {
        wrap: inNamespace(p.ns, APP_UID),
        env: podEnv(),
        stdin: true,
      });
      cleanup.defer(`stop payments app ${name} (pod ${p.name})`, () => child.stop(2000));
      const ready = await child.waitForLog("app ready", 30_000);
      if (!ready) throw new RemoraError("ERR_CONTROL", `the payments ${name} app in pod ${p.name} did not start within 30s: ${child.tail() || "no output"}`);
      let state = { flapping, hits: 0, resets: 0 };
      const ask = async (line: string) => {
        const next = child.nextLog("app state", 5_000);
        child.send(line);
        const l = await next;
        if (!l) throw new RemoraError("ERR_CONTROL", `the payments ${name} app in pod ${p.name} stopped answering: ${child.tail() || "no output"}`);
        state = { flapping: l.flapping === true, hits: Number(l.hits), resets: Number(l.resets) };
        return state;
      };
      const app: ReplicaApp = {
        name,
        address: String(ready.address),
        get flapping() {
          return state.flapping;
        },
        setFlapping: async (on) => void (await ask(on ? "flapping on" : "flapping off")),
        counts: () => ask("state"),
        close: () => child.stop(2000),
      };
      return app;
    },

    async sidecar(name, app, token) {
      const p = pod(POD_OF[name]);
      const port = app ? app.address.slice(app.address.lastIndexOf(":") + 1) : "";
      const init = await remoraIn(p, ["init", "--proxy-uid", String(PROXY_UID), "--inbound-ports", port]);
      if (init.code !== 0) throw new RemoraError("ERR_CONTROL", `remora init in pod ${p.name} failed: ${(init.stderr || init.stdout).trim()}`);
      rules.set(name, app ? `outbound -> 127.0.0.1:${OUTBOUND_PORT} (except uid ${PROXY_UID}), inbound :${port} -> :${INBOUND_PORT}` : `outbound -> 127.0.0.1:${OUTBOUND_PORT} (except uid ${PROXY_UID})`);
      // Outbound on loopback: a REDIRECTed connection arrives at 127.0.0.1. Admin on the pod
      // address: this narrator reads its /events from pod cp, as any peer would.
      const args = ["--outbound", `127.0.0.1:${OUTBOUND_PORT}`, "--admin", `${p.ip}:${ADMIN_PORT}`];
      const advertise = app ? `${p.ip}:${INBOUND_PORT}` : undefined;
      if (app) args.push("--app", app.address, "--inbound", `0.0.0.0:${INBOUND_PORT}`, "--advertise", advertise!);
      return {
        args,
        spawn: { wrap: inNamespace(p.ns, PROXY_UID), env: podEnv({ REMORA_TOKEN: token }) },
        ...(advertise ? { advertise } : {}),
      };
    },

    ordersClient: () => ({ charge: () => curlCharge(orders), close: () => {} }),

    names: (mesh) => REPLICAS.map((r) => [mesh.apps[r].address, `${r}'s app`]),

    callPath: () => `curl as uid ${APP_UID} in pod orders ${orders.ip}; no proxy flag, no TLS option`,

    async prepare(mesh, out) {
      const services = (await mesh.api.request("GET", "/v1/services")) as { service: string; vip: string; endpoints: number }[];
      const file = writeHosts(orders, services.map((s) => [s.vip, s.service] as const));
      vipLines = services.map((s) => `${s.service} -> ${s.vip}`);
      out.say("the pods (network namespaces on one bridge, 10.250.0.0/16, no route out; VIPs 240.240.0.0/16 routed into each pod's eth0):");
      const sidecarOf = (name: string) => (Object.keys(POD_OF) as SidecarName[]).find((s) => POD_OF[s] === name);
      out.say(
        table(
          ["POD", "NAMESPACE", "IP", "RUNS", "IPTABLES REDIRECT (remora init)"],
          POD_LAYOUT.map((p) => {
            const s = sidecarOf(p.name);
            return [p.name, pod(p.name).ns, p.ip, s ? `${p.role} (app uid ${APP_UID}, sidecar uid ${PROXY_UID})` : p.role, (s && rules.get(s)) ?? "-"];
          }),
        ).replace(/^/gm, "  "),
        { pods: POD_LAYOUT.map((p) => ({ ...p, ns: pod(p.name).ns })) },
      );
      out.say(`  VIPs from GET /v1/services: ${vipLines.join(", ")}; written to ${file} (ip netns exec mounts it as the pod's /etc/hosts)`, { services, hosts: file });
      out.say();
    },

    async afterFirstCall(_mesh, out) {
      const r = await execIn(orders.ns, {}, "iptables-save", ["-c", "-t", "nat"], 10_000);
      // The nat table sees only a connection's first packet, so a rule's packet count is its connection count.
      const m = /^\[(\d+):\d+\] -A REMORA_REDIRECT -p tcp -j REDIRECT --to-ports (\d+)/m.exec(r.stdout);
      if (m) out.say(`   iptables in pod orders: REMORA_REDIRECT has sent ${m[1]} connection(s) to 127.0.0.1:${m[2]} so far (iptables-save -c); curl itself dialled ${vipLines.find((l) => l.startsWith("payments "))?.split(" -> ")[1] ?? "the VIP"}:80`);
    },

    explore(mesh, out) {
      const root = join(mesh.dir, "root.pem");
      out.say();
      out.say("--keep: the pods stay up until Ctrl-C. To explore (as root; `remora` is `node bin/remora.js` in a checkout):");
      out.say(`  ip netns exec ${orders.ns} setpriv --reuid=${APP_UID} --regid=${APP_UID} --clear-groups curl -s -X POST http://payments/charge   # as the orders app`);
      out.say(`  ip netns exec ${orders.ns} iptables-save -c -t nat          # the redirect rules and their counters`);
      out.say(`  ip netns exec ${cp.ns} remora get proxies --control ${mesh.controlUrl} --data ${mesh.dataDir}`);
      out.say(`  ip netns exec ${cp.ns} remora get services --control ${mesh.controlUrl} --data ${mesh.dataDir}`);
      for (const s of Object.values(mesh.sidecars)) out.say(`  ${s.name.padEnd(6)} sidecar admin: ip netns exec ${cp.ns} curl -s http://${s.admin}/metrics   (/endpoints /config /events)`);
      out.record("keep", { control: mesh.controlUrl, data: mesh.dataDir, ca: root, pods: Object.fromEntries(Object.values(pods).map((p) => [p.name, { ns: p.ns, ip: p.ip }])) });
    },
  };
}

/** The orders app's call: plain curl as the app's uid in pod orders; `payments` resolves through the pod's hosts file. */
async function curlCharge(orders: Pod): Promise<CallResult> {
  const args = ["-sS", "--max-time", "10", "-X", "POST", "-H", "content-type: application/json", "-d", BODY, "-w", "\n%{http_code} %{time_total}", "http://payments/charge"];
  const r = await execIn(orders.ns, { uid: APP_UID }, "curl", args, 15_000);
  const i = r.stdout.lastIndexOf("\n");
  const [code = "0", seconds = "0"] = r.stdout.slice(i + 1).split(" ");
  const status = Number(code) || 0;
  // curl's own clock (time_total), not the time to start a process in the pod.
  const ms = Number(seconds) * 1000;
  return status === 0 ? { status, body: `curl exited ${r.code}: ${r.stderr.trim()}`, ms } : { status, body: r.stdout.slice(0, i), ms };
}
