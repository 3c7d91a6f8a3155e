// `remora demo`: the reference scenario of DESIGN.md end to end on loopback, narrated
// from the events the sidecars actually emit. Three sidecars with real mTLS (SPIFFE
// SVIDs minted by a throwaway CA), two payments replicas with B1 flapping, the seed's
// policy, a live policy change, then a summary. Everything it starts, it stops.

import { readFile } from "node:fs/promises";
import { parse } from "./args.ts";
import { table } from "./table.ts";
import { charge, startPaymentsApp, type CallResult, type PaymentsApp } from "./demo-apps.ts";
import { createDemoPki } from "./pki.ts";
import type { MeshEvent } from "../core/events.ts";
import type { Policy } from "../core/policy/types.ts";
import { parsePolicies } from "../core/policy/parse.ts";
import { formatDuration } from "../core/duration.ts";
import { startSidecar, type Sidecar } from "../sidecar/sidecar.ts";
import { silentLogger } from "../sidecar/logger.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { systemClock } from "../core/system-clock.ts";

export const usage = `remora demo [--keep] [--realtime] [--flapping B1[,B2]] [--requests N]

Runs the reference scenario on loopback: orders calls POST http://payments/charge through
its sidecar; payments has two replicas, B1 flapping (its app resets connections); the seed's
policy (policies/payments.yaml) retries onto B2 and ejects B1.

  --keep       leave everything running after the summary (Ctrl-C stops it)
  --realtime   keep the policy's 30s base_ejection_time (default: 4s so B1's return is seen)
  --flapping   which replicas reset connections at first (default B1)
  --requests   calls per phase (default 12)`;

interface Phase {
  name: string;
  results: CallResult[];
  retries: number;
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse("demo", argv, {
    keep: { type: "boolean" },
    realtime: { type: "boolean" },
    flapping: { type: "string", default: "B1" },
    requests: { type: "string", default: "12" },
    help: { type: "boolean" },
  });
  if (values.help) return console.log(usage), 0;
  const perPhase = Math.max(4, Math.min(1000, Number(values.requests) || 12));
  const flapping = new Set(values.flapping.split(",").map((s) => s.trim().toUpperCase()));

  const out = (s = "") => console.log(s);
  const runtime = await loadRuntime();
  const policyFile = new URL("../../policies/payments.yaml", import.meta.url);
  const seed = parsePolicies(await readFile(policyFile, "utf8"), "policies/payments.yaml")[0]!;
  const policy: Policy = values.realtime || !seed.outlier
    ? seed
    : { ...seed, outlier: { ...seed.outlier, baseEjectionMs: 4000, intervalMs: 500 } };

  const stack: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    while (stack.length) await stack.pop()!().catch(() => {});
  };
  const interrupted = new AbortController();
  const onSigint = () => interrupted.abort();
  process.once("SIGINT", onSigint);
  stack.push(async () => void process.off("SIGINT", onSigint));

  try {
    out(`remora demo: the reference scenario on loopback (${runtime.name} ${runtime.version})`);
    out();
    const pki = await createDemoPki("cluster.local", ["orders", "payments"]);
    out(`  CA          trust domain cluster.local, root serial ${pki.rootSerial.slice(0, 16)}…`);

    const apps: Record<string, PaymentsApp> = {};
    const sidecars: Record<string, Sidecar> = {};
    for (const name of ["B1", "B2"]) {
      const app = await startPaymentsApp(name, flapping.has(name));
      stack.push(() => app.close());
      apps[name] = app;
      const sc = await startSidecar(
        {
          identity: pki.svids.payments!,
          inbound: { listen: "127.0.0.1:0", app: app.address, mode: "STRICT" },
          outbound: { listen: "127.0.0.1:0" },
          admin: { listen: "127.0.0.1:0" },
          mesh: { policies: [], endpoints: {}, version: "demo-1" },
          drainMs: 1000,
        },
        { runtime, clock: systemClock, random: Math.random, log: silentLogger },
      );
      stack.push(() => sc.close());
      sidecars[name] = sc;
      out(`  payments ${name} app ${app.address}${app.flapping ? " (flapping: resets connections)" : ""}, sidecar inbound ${sc.inbound!.address} (STRICT mTLS) as ${sc.identity().id}`);
    }
    const nameOf = new Map(["B1", "B2"].map((n) => [sidecars[n]!.inbound!.address, n]));
    const label = (address: string | undefined) => (address ? `${nameOf.get(address) ?? address} (${address})` : "?");

    const events: MeshEvent[] = [];
    let narrate = (_e: MeshEvent) => {};
    const endpoints = {
      payments: ["B1", "B2"].map((n) => ({ address: sidecars[n]!.inbound!.address, identity: sidecars[n]!.identity().id })),
    };
    const orders = await startSidecar(
      {
        identity: pki.svids.orders!,
        outbound: { listen: "127.0.0.1:0" },
        admin: { listen: "127.0.0.1:0" },
        mesh: { policies: [policy], endpoints, version: "demo-1" },
        drainMs: 1000,
      },
      { runtime, clock: systemClock, random: Math.random, log: silentLogger, onEvent: (e) => (events.push(e), narrate(e)) },
    );
    stack.push(() => orders.close());
    out(`  orders      sidecar outbound ${orders.outbound.address}, admin http://${orders.admin.address}, as ${orders.identity().id}`);
    out();
    out(`policy (policies/payments.yaml): ${policy.route.loadBalancer}, retry_on ${[...policy.route.retry.retryOn].join(",")}, num_retries ${policy.route.retry.numRetries}, per_try_timeout ${policy.route.retry.perTryTimeoutMs === undefined ? "unset" : formatDuration(policy.route.retry.perTryTimeoutMs)}, tls ${policy.route.tls.mode}, outlier consecutive_5xx ${policy.outlier?.consecutive5xx} base_ejection_time ${formatDuration(policy.outlier?.baseEjectionMs ?? 0)}${values.realtime ? "" : " (demo: 4s instead of the seed's 30s so B1's return is seen; --realtime keeps 30s)"}`);
    out();

    const phases: Phase[] = [];
    const run = async (phase: Phase, n: number, describe: (i: number, r: CallResult, evs: MeshEvent[]) => void) => {
      for (let i = 0; i < n && !interrupted.signal.aborted; i++) {
        const from = events.length;
        let r: CallResult;
        try {
          r = await charge(orders.outbound.address, interrupted.signal);
        } catch (e) {
          if (interrupted.signal.aborted) break;
          r = { status: 0, body: String(e), ms: 0 };
        }
        const evs = events.slice(from);
        phase.retries += evs.filter((e) => e.type === "retry").length;
        phase.results.push(r);
        describe(i, r, evs);
      }
    };

    // Phase 1: the first call, narrated event by event, then steady calls until B1 is ejected.
    const p1: Phase = { name: `seed policy, ${[...flapping].join("+")} flapping`, results: [], retries: 0 };
    phases.push(p1);
    out("1. orders app: POST http://payments/charge   (plain HTTP, no TLS code in the app)");
    narrate = (e) => out(`   ${describeEvent(e, label)}`);
    await run(p1, 1, (_i, r) => out(`   orders app: got ${r.status} in ${r.ms.toFixed(1)} ms${summariseBody(r.body)}`));
    narrate = (e) => {
      if (e.type === "eject" || e.type === "uneject") out(`   ${describeEvent(e, label)}`);
    };
    out();
    out(`2. ${perPhase} more calls, one at a time:`);
    const hitsBefore = { B1: apps.B1!.hits, B2: apps.B2!.hits };
    await run(p1, perPhase, (i, r, evs) => out(`   call ${String(i + 2).padStart(2)}: ${r.status} in ${r.ms.toFixed(1).padStart(5)} ms  ${pathOf(evs, label)}`));
    const ejected = events.find((e) => e.type === "eject");
    if (ejected?.type === "eject") {
      const afterEject = events.slice(events.indexOf(ejected)).filter((e) => e.type === "pick" && nameOf.get(e.endpoint) === "B1").length;
      out(`   while ejected, sidecar A sent B1 ${afterEject} request(s); B1's app saw ${apps.B1!.hits - hitsBefore.B1} in this step, B2's ${apps.B2!.hits - hitsBefore.B2}`);
    } else {
      out("   no endpoint was ejected");
    }

    // Phase 2: B1 heals; wait for its ejection to end and see it serve again.
    if (!interrupted.signal.aborted && ejected?.type === "eject") {
      for (const app of Object.values(apps)) app.flapping = false;
      out();
      out(`3. the deploy finishes: ${[...flapping].join(" and ")} stop${flapping.size > 1 ? "" : "s"} resetting. Waiting for the ejection of ${nameOf.get(ejected.endpoint) ?? ejected.endpoint} to end (${new Date(ejected.untilMs).toISOString().slice(11, 23)})…`);
      const p2: Phase = { name: "B1 healed", results: [], retries: 0 };
      phases.push(p2);
      const deadline = ejected.untilMs + (policy.outlier?.intervalMs ?? 10_000) + 2000;
      while (Date.now() < deadline && !interrupted.signal.aborted && !events.some((e) => e.type === "uneject")) {
        await run(p2, 1, () => {});
        await sleep(250, interrupted.signal);
      }
      await run(p2, 4, (i, r, evs) => out(`   call ${i + 1}: ${r.status} in ${r.ms.toFixed(1).padStart(5)} ms  ${pathOf(evs, label)}`));
    }

    // Phase 3: change the policy live (num_retries: 0) and make B1 flap again.
    if (!interrupted.signal.aborted) {
      const noRetries: Policy = { ...policy, route: { ...policy.route, retry: { ...policy.route.retry, numRetries: 0 } } };
      orders.applyMesh({ policies: [noRetries], endpoints, version: "demo-2" });
      for (const n of flapping) apps[n]!.flapping = true;
      out();
      out(`4. live policy change on sidecar A (config version demo-2): num_retries 2 -> 0; ${[...flapping].join("+")} flapping again. No process restarted.`);
      const p3: Phase = { name: "num_retries: 0", results: [], retries: 0 };
      phases.push(p3);
      await run(p3, perPhase, (i, r, evs) => out(`   call ${String(i + 1).padStart(2)}: ${r.status} in ${r.ms.toFixed(1).padStart(5)} ms  ${pathOf(evs, label)}`));
      const failed = p3.results.filter((r) => r.status !== 200).length;
      out(`   without retries the orders app saw ${failed} failure(s) of ${p3.results.length}; with num_retries 2 it saw ${p1.results.filter((r) => r.status !== 200).length} of ${p1.results.length}`);
    }

    out();
    out("summary");
    const rows = phases.map(summarise);
    out(table(Object.keys(rows[0] ?? {}), rows.map((r) => Object.values(r)), new Set([1, 2, 3, 4, 5])).replace(/^/gm, "  "));
    out();
    out(`metrics: http://${orders.admin.address}/metrics   endpoints: http://${orders.admin.address}/endpoints`);

    if (values.keep && !interrupted.signal.aborted) {
      out("--keep: everything stays up; Ctrl-C stops it.");
      await new Promise<void>((done) => interrupted.signal.addEventListener("abort", () => done(), { once: true }));
    }
    return interrupted.signal.aborted ? 130 : 0;
  } finally {
    await cleanup();
    if (interrupted.signal.aborted) console.log("\nstopped; everything the demo started is shut down.");
  }
}

function describeEvent(e: MeshEvent, label: (a: string | undefined) => string): string {
  switch (e.type) {
    case "resolve":
      return `sidecar A: resolve "${e.destination}" -> [${e.endpoints.map((x) => `${label(x.address)}${x.available ? "" : " ejected"}`).join(", ")}]`;
    case "pick":
      return `sidecar A: attempt ${e.attempt}: pick ${label(e.endpoint)} (${e.balancer})`;
    case "connection":
      return e.info.reused
        ? `sidecar A: reuse the mTLS connection to ${label(e.endpoint)}, peer ${e.info.peerIdentity ?? "plaintext"}`
        : `sidecar A: mTLS handshake with ${label(e.endpoint)} OK in ${e.info.handshakeMs?.toFixed(1) ?? "?"} ms; peer certificate verified: ${e.info.peerIdentity}`;
    case "attempt-failed":
      return `sidecar A: attempt ${e.attempt} to ${label(e.endpoint)} failed after ${e.durationMs.toFixed(1)} ms: ${e.kind === "status" ? `status ${e.status}` : e.kind} (${e.message})`;
    case "retry":
      return `sidecar A: retry_policy fires (${e.reason}); retry ${e.attempt - 1} after ${e.backoffMs.toFixed(0)} ms back-off`;
    case "retry-abandoned":
      return `sidecar A: no retry: ${e.reason}`;
    case "response":
      return `sidecar A: ${e.status} from ${label(e.endpoint)} after ${e.attempts} attempt(s), ${e.durationMs.toFixed(1)} ms`;
    case "eject":
      return `sidecar A: outlier detection ejects ${label(e.endpoint)} (${e.reason}) for ${formatDuration(Math.max(0, e.untilMs - Date.now()))}, ejection #${e.ejectionCount}; later calls skip it`;
    case "uneject":
      return `sidecar A: ${label(e.endpoint)} returns to the pool`;
  }
}

function pathOf(evs: MeshEvent[], label: (a: string | undefined) => string): string {
  const short = (a: string) => label(a).split(" ")[0]!;
  const attempts: string[] = [];
  const notes: string[] = [];
  for (const e of evs) {
    if (e.type === "pick") attempts.push(short(e.endpoint));
    if (e.type === "attempt-failed") attempts[attempts.length - 1] += ` ✗ ${e.kind === "status" ? e.status : e.kind}`;
    if (e.type === "response" && e.status < 500 && attempts.length) attempts[attempts.length - 1] += " ✓";
    // Outlier detection acts while the attempt is being judged; say so after the path.
    if (e.type === "eject") notes.push(`[${short(e.endpoint)} ejected]`);
    if (e.type === "uneject") notes.push(`[${short(e.endpoint)} back]`);
  }
  return [attempts.join(" -> "), ...notes].join("  ");
}

function summariseBody(body: string): string {
  try {
    const j = JSON.parse(body) as { replica?: string; caller?: string };
    return j.replica ? ` from payments ${j.replica}; the app saw caller ${j.caller}` : "";
  } catch {
    return "";
  }
}

function summarise(p: Phase) {
  const ms = p.results.map((r) => r.ms).sort((a, b) => a - b);
  const q = (x: number) => (ms.length ? ms[Math.min(ms.length - 1, Math.ceil(x * ms.length) - 1)]! : 0);
  const ok = p.results.filter((r) => r.status === 200).length;
  return {
    phase: p.name,
    requests: String(p.results.length),
    success: p.results.length ? `${((ok / p.results.length) * 100).toFixed(1)}%` : "-",
    retries: String(p.retries),
    p50: `${q(0.5).toFixed(1)} ms`,
    p99: `${q(0.99).toFixed(1)} ms`,
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((ok) => {
    const t = setTimeout(ok, ms);
    signal.addEventListener("abort", () => (clearTimeout(t), ok()), { once: true });
  });
}
