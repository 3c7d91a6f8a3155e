// `remora demo --pods`, the part in the host's namespaces: checks it may, builds the pod
// network (pods-layout in topology-pods.ts), runs the demo itself inside pod cp (re-executed
// with --pods-inner: only from inside the pod network can it reach the control plane's and
// the sidecars' addresses), and tears every namespace down afterwards, also on Ctrl-C.

import { spawn, type ChildProcess } from "node:child_process";
import { PodNetwork, podsUnavailable, sweepStale, inNamespace } from "../pods/index.ts";
import { remoraCommand } from "../self.ts";
import { POD_LAYOUT } from "./topology-pods.ts";

/** How long the inner demo gets to stop its processes after a signal before the namespaces go anyway. */
const INNER_GRACE_MS = 15_000;

export async function runInPods(argv: readonly string[]): Promise<number> {
  const why = podsUnavailable();
  if (why) {
    console.error(`remora demo --pods cannot run here: ${why}; run it as root, or run \`remora demo\` without --pods (loopback, no root needed).`);
    return 2;
  }
  const stale = sweepStale();
  if (stale.length) console.error(`removed namespaces left by an earlier run that died: ${stale.join(", ")}`);

  // Signals are ours to handle: the inner demo must stop its processes before the namespaces go.
  const net = new PodNetwork({ handleSignals: false });
  let signalled: NodeJS.Signals | undefined;
  let inner: ChildProcess | undefined;
  let gotSignal!: () => void;
  let late: ReturnType<typeof setTimeout> | undefined;
  const graceOver = new Promise<void>((ok) => (gotSignal = ok)).then(() => new Promise<void>((ok) => (late = setTimeout(ok, INNER_GRACE_MS))));
  const forward = () => {
    // A terminal's Ctrl-C reaches the inner demo too (same process group); a kill aimed at this pid does not.
    if (signalled && inner?.pid !== undefined) {
      try {
        process.kill(inner.pid, signalled);
      } catch {
        // already gone
      }
    }
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return;
    signalled = signal;
    forward();
    gotSignal();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const say = (text: string) => console.log(argv.includes("--json") ? JSON.stringify({ type: "say", text }) : text);
  try {
    for (const p of POD_LAYOUT) net.addPod(p.name, p.ip);
    const cmd = remoraCommand(["demo", ...argv, "--pods-inner", net.prefix]);
    const [ip, ...rest] = inNamespace(net.pod("cp").ns);
    inner = spawn(ip!, [...rest, cmd.command, ...cmd.args], { stdio: "inherit" });
    const child = inner;
    const exited = new Promise<number>((ok) => {
      child.once("error", (e) => (console.error(`remora demo --pods: could not start the demo in pod cp: ${e.message}`), ok(1)));
      child.once("exit", (code, signal) => ok(code ?? (signal === "SIGINT" ? 130 : 143)));
    });
    forward();
    const code = await Promise.race([exited, graceOver.then(() => 1)]);
    return signalled ? (signalled === "SIGINT" ? 130 : 143) : code;
  } finally {
    clearTimeout(late);
    net.teardown();
    const left = net.leftovers();
    if (left.length) console.error(`remora demo --pods: namespaces left behind: ${left.join(", ")}; remove them with \`ip netns del NAME\`.`);
    else say(`pods removed: namespaces ${net.prefix}{net,${POD_LAYOUT.map((p) => p.name).join(",")}} with their veths and iptables rules, and their /etc/netns hosts files; no process left in them.`);
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
