// `remora demo`: the reference scenario of DESIGN.md on loopback with the real pieces (a
// control plane, sidecars as `remora proxy` processes enrolled by join token, policy
// applied through the API), narrated only from what was observed: the sidecars' event
// feeds, the control plane's answers and the apps' own counts. Everything it starts, it stops.

import { readFile } from "node:fs/promises";
import { parseDocument } from "yaml";
import { parse } from "./args.ts";
import type { CallResult } from "./demo-apps.ts";
import { loadRuntime } from "../runtime/detect.ts";
import type { RequestRecord } from "../sidecar/event-stream.ts";
import { Cleanup, REPLICAS, adminJson, proxies, startMesh, untilProxies, type DemoMesh, type Replica, type SidecarName } from "./demo/mesh.ts";
import { loopbackTopology } from "./demo/topology-loopback.ts";
import { podsTopology } from "./demo/topology-pods.ts";
import { runInPods } from "./demo/pods-runner.ts";
import { servePodApp } from "./demo/pod-app.ts";
import type { Feed, FeedEvent } from "./demo/feed.ts";
import { describeInbound, describeOutbound, pathOf } from "./demo/narration.ts";
import { createOutput, type Output } from "./demo/output.ts";
import { summarise, summaryTable, type Phase } from "./demo/summary.ts";
import { traceTree } from "./demo/trace-tree.ts";
import { table } from "./table.ts";
import { RemoraError } from "../core/errors.ts";

export const usage = `remora demo [--keep] [--realtime] [--flapping B1[,B2]] [--requests N] [--json]

Runs the reference scenario on loopback with the real pieces: a control plane on a
temporary data directory, the orders app and two payments replicas (B1 flapping: its app
resets connections), each app with a \`remora proxy\` sidecar enrolled by join token, the
seed's policy (policies/payments.yaml) applied through the control plane. orders calls
POST http://payments/charge; what happens is narrated from the sidecars' event feeds.

  --keep       leave everything running after the summary and print how to explore it (Ctrl-C stops it)
  --realtime   keep the policy's 30s base_ejection_time (default: 4s so B1's return is seen)
  --flapping   which replicas reset connections at first (default B1)
  --requests   calls per phase (default 12)
  --json       JSON lines for scripts: narration, every observed event, the summary, the trace
  --pods       the same in network-namespace pods with iptables redirection: curl as the
               orders app, each app and sidecar under its own uid (needs root; see docs/pods.md)`;

/** Demo values for outlier detection, so an ejection ends within the run. */
const DEMO_EJECTION = { base_ejection_time: "4s", interval: "1s" } as const;

interface Call {
  app: CallResult;
  /** The caller sidecar's record of this request, if it arrived. */
  record?: RequestRecord;
  /** Everything on the caller's feed from the previous call's record to this one's. */
  events: FeedEvent[];
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parse("demo", argv, {
    keep: { type: "boolean" },
    realtime: { type: "boolean" },
    flapping: { type: "string", default: "B1" },
    requests: { type: "string", default: "12" },
    json: { type: "boolean" },
    pods: { type: "boolean" },
    help: { type: "boolean" },
    // Internal roles of --pods (not for people): the demo inside pod cp, a payments app in its pod.
    "pods-inner": { type: "string" },
    "pods-app": { type: "string" },
    "pods-app-flapping": { type: "boolean" },
  });
  if (values.help) return console.log(usage), 0;
  if (values["pods-app"] !== undefined) return servePodApp(values["pods-app"], values["pods-app-flapping"] === true);
  if (values.pods && values["pods-inner"] === undefined) return runInPods(argv);
  const topology = values["pods-inner"] !== undefined ? podsTopology(values["pods-inner"]) : loopbackTopology();
  const perPhase = Math.max(4, Math.min(1000, Number(values.requests) || 12));
  const flapping = new Set(values.flapping.split(",").map((s) => s.trim().toUpperCase()).filter((s) => s !== ""));
  const out = createOutput(values.json === true);
  const cleanup = new Cleanup();
  // With --keep, Ctrl-C after the run is the normal way out (exit 0); before its end it is an interruption.
  let finished = false;

  const onSignal = (signal: NodeJS.Signals) => {
    if (cleanup.started) return;
    out.mute();
    process.stderr.write(`\n${signal}: stopping everything the demo started…\n`);
    void cleanup.run().then(() => {
      process.stderr.write("stopped; no process or file of the demo is left.\n");
      process.exit(finished ? 0 : signal === "SIGINT" ? 130 : 143);
    });
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  try {
    const runtime = await loadRuntime();
    const seedText = await readFile(new URL("../../policies/payments.yaml", import.meta.url), "utf8");
    const policy = (numRetries?: number) => {
      const doc = parseDocument(seedText);
      if (!values.realtime) for (const [k, v] of Object.entries(DEMO_EJECTION)) doc.setIn(["outlier_detection", k], v);
      if (numRetries !== undefined) doc.setIn(["route", "retry_policy", "num_retries"], numRetries);
      return doc.toString();
    };
    const seedRetries = Number(parseDocument(seedText).getIn(["route", "retry_policy", "num_retries"]) ?? 2);

    out.say(`remora demo: the reference scenario ${topology.where} (${runtime.name} ${runtime.version}; sidecars run as \`remora proxy\` on ${runtime.name} too)`, { runtime: runtime.name });
    out.say();
    out.say(
      values.realtime
        ? "policy: policies/payments.yaml as is"
        : `policy: policies/payments.yaml, except base_ejection_time 30s -> ${DEMO_EJECTION.base_ejection_time} and interval -> ${DEMO_EJECTION.interval} so B1's return is seen within the run (--realtime keeps 30s)`,
      { shortened: !values.realtime },
    );
    const mesh = await startMesh({ topology, flapping, policyYaml: policy(), out, cleanup, onEvent: (sidecar, e) => out.record("event", { sidecar, event: e }) });
    const { apps, sidecars, feeds, cast } = mesh;

    await waitForConfig(mesh, out);
    out.say();
    out.say("the mesh, as the control plane reports it (GET /v1/proxies):");
    const rows = await proxies(mesh);
    out.say(
      table(
        ["PROXY", "IDENTITY", "INBOUND", "APP", "CONFIG", "STATUS", "WATCHES"],
        rows.map((p) => {
          const name = REPLICAS.find((r) => sidecars[r].proxyId === p.proxy);
          return [p.proxy, p.identity, p.address ?? "(client only)", name ? `${apps[name].address}${apps[name].flapping ? " (flapping)" : ""}` : topology.ordersApp, p.config_version ?? "-", p.status, watches(p)];
        }),
      ).replace(/^/gm, "  "),
      { proxies: rows },
    );
    const issued = mesh.controlLog.filter((l) => l.msg === "identity issued" && l.obj.via === "token");
    out.say(`  ${issued.length} SVIDs issued against join tokens: ${[...new Set(issued.map((l) => String(l.obj.id)))].join(", ")}`);
    out.say();

    await topology.prepare?.(mesh, out);
    const orders = feeds.orders;
    const ordersClient = topology.ordersClient(sidecars.orders);
    cleanup.defer("close the orders app's connection", () => ordersClient.close());
    let cursor = 0;
    const call = async (): Promise<Call> => {
      let app: CallResult;
      try {
        app = await ordersClient.charge();
      } catch (e) {
        app = { status: 0, body: String((e as Error)?.message ?? e), ms: 0 };
      }
      const hit = await orders.waitFor(cursor, (e) => e.type === "request" && e.direction === "outbound", 5_000);
      const end = hit ? hit.index + 1 : orders.events.length;
      const events = orders.events.slice(cursor, end);
      cursor = end;
      return { app, ...(hit?.event.type === "request" ? { record: hit.event } : {}), events };
    };
    const phases: Phase[] = [];
    const runPhase = async (phase: Phase, n: number, each: (i: number, c: Call) => void) => {
      for (let i = 0; i < n && !cleanup.started; i++) {
        const c = await call();
        phase.calls.push({ status: c.app.status, ms: c.app.ms });
        phase.retries += c.events.filter((e) => e.type === "retry").length;
        each(i, c);
      }
    };
    // Ejections and returns are told in full once, where they first show.
    const told = new Set<FeedEvent>();
    const callLine = (label: string, c: Call) => {
      out.say(`   ${label}: ${c.app.status || "no answer"} in ${c.app.ms.toFixed(1).padStart(5)} ms  ${pathOf(c.events, cast)}`, { call: c.record?.requestId, status: c.app.status, ms: c.app.ms });
      for (const e of c.events) {
        if ((e.type === "eject" || e.type === "uneject") && !told.has(e)) out.say(`      ${describeOutbound(e, cast)}`);
        told.add(e);
      }
    };

    // 1. One call, told event by event from all three feeds and the apps' own counts.
    const p1: Phase = { name: `seed policy, ${[...flapping].join("+") || "none"} flapping`, calls: [], retries: 0 };
    phases.push(p1);
    out.say(`1. orders app: POST http://payments/charge   (${topology.callPath(sidecars.orders)})`);
    const before = { B1: await apps.B1.counts(), B2: await apps.B2.counts() };
    let first: Call | undefined;
    await runPhase(p1, 1, (_i, c) => (first = c));
    const after = { B1: await apps.B1.counts(), B2: await apps.B2.counts() };
    if (first) await narrateCall(first, mesh, out, { B1: after.B1.resets - before.B1.resets, B2: after.B2.resets - before.B2.resets });
    await topology.afterFirstCall?.(mesh, out);

    // 2. Steady calls until outlier detection acts.
    out.say();
    out.say(`2. ${perPhase} more calls, one at a time:`);
    const hitsBefore = { B1: (await apps.B1.counts()).hits, B2: (await apps.B2.counts()).hits };
    await runPhase(p1, perPhase, (i, c) => callLine(`call ${String(i + 2).padStart(2)}`, c));
    const eject = orders.events.find((e) => e.type === "eject");
    if (eject?.type === "eject") {
      const name = cast.short(eject.endpoint);
      const after = orders.events.slice(orders.events.indexOf(eject) + 1);
      const picks = after.filter((e) => e.type === "pick" && e.endpoint === eject.endpoint).length;
      const replica = REPLICAS.find((r) => r === name);
      const seenByReplica = replica ? feeds[replica].events.filter((e) => e.type === "request" && e.time > eject.time).length : 0;
      out.say(`   while ${name} was ejected, sidecar A sent it ${picks} request(s) and ${name}'s sidecar logged ${seenByReplica}; the apps counted B1 ${(await apps.B1.counts()).hits - hitsBefore.B1}, B2 ${(await apps.B2.counts()).hits - hitsBefore.B2} requests in this step`);
    } else {
      out.say("   no endpoint was ejected in this step");
    }

    // 3. The deploy finishes; the ejection ends and the replica serves again.
    if (!cleanup.started && eject?.type === "eject") {
      for (const r of REPLICAS) await apps[r].setFlapping(false);
      const name = cast.short(eject.endpoint);
      out.say();
      out.say(`3. the deploy finishes: ${[...flapping].join(" and ")} stop${flapping.size > 1 ? "" : "s"} resetting. Waiting for ${name}'s ejection to end (sidecar A's /endpoints says when)…`);
      const p2: Phase = { name: `${[...flapping].join("+")} healed`, calls: [], retries: 0 };
      phases.push(p2);
      const back = await waitForReturn(mesh, eject.endpoint, cursor, out);
      if (back) {
        told.add(back);
        out.say(`   ${describeOutbound(back, cast)}`);
      }
      else out.say(`   ${name} did not return within the wait`);
      await runPhase(p2, 4, (i, c) => callLine(`call ${i + 1}`, c));
    }

    // 4. A live policy change through the control plane: no retries, B1 flapping again.
    if (!cleanup.started) {
      out.say();
      out.say(`4. live policy change: num_retries ${seedRetries} -> 0, applied through the control plane; ${[...flapping].join("+")} flapping again. No process restarts.`);
      const pids = Object.values(sidecars).map((s) => s.child.pid);
      const changed = await applyAndWaitForAck(mesh, policy(0), out);
      for (const r of flapping) if (r === "B1" || r === "B2") await apps[r].setFlapping(true);
      const p3: Phase = { name: "num_retries: 0", calls: [], retries: 0 };
      phases.push(p3);
      await runPhase(p3, perPhase, (i, c) => callLine(`call ${String(i + 1).padStart(2)}`, c));
      const failed = (p: Phase) => p.calls.filter((c) => c.status !== 200).length;
      out.say(`   without retries the orders app saw ${failed(p3)} failure(s) in ${p3.calls.length} calls; with num_retries ${seedRetries} it saw ${failed(p1)} in ${p1.calls.length}`);
      out.say(`   same sidecar processes throughout: ${Object.values(sidecars).every((s, i) => s.child.pid === pids[i] && s.child.logs.length > 0) ? "pids unchanged" : "a pid changed!"} (${pids.join(", ")}); config version ${changed ?? "?"}`);

      out.say();
      out.say(`5. restore num_retries ${seedRetries} through the control plane`);
      await applyAndWaitForAck(mesh, policy(), out);
    }

    out.say();
    out.say("summary (the orders app's own view: status and latency per call; retries from sidecar A's feed)");
    const rowsOut = phases.map(summarise);
    out.say(summaryTable(rowsOut).replace(/^/gm, "  "));
    out.record("summary", { phases: rowsOut });

    await printTrace(mesh, first, out);

    if (values.keep && !cleanup.started) {
      topology.explore(mesh, out);
      finished = true;
      await new Promise<never>(() => {}); // the signal handler cleans up and exits
    }
    return 0;
  } finally {
    if (!cleanup.started) {
      out.progress("cleaning up…");
      await cleanup.run((what) => out.progress(`cleaning up: ${what}`));
      out.say("cleaned up: sidecars stopped (process groups), control plane, collector and apps closed, temporary directory removed.");
    }
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/**
 * Waits until sidecar A serves both replicas and the policy (its /config) and every proxy
 * is in sync (GET /v1/proxies): sidecar A ACKed the version it shows, and each on-demand
 * sidecar holds the latest of what it watches. Registrations keep bumping the version while
 * the sidecars start, so both are read again until they agree.
 */
async function waitForConfig(mesh: DemoMesh, out: Output): Promise<void> {
  const started = Date.now();
  for (;;) {
    const c = await adminJson<{ version: string; endpoints: Record<string, unknown[]>; policies: unknown[] }>(mesh.sidecars.orders, "/config");
    const rows = await proxies(mesh);
    const complete = (c.endpoints.payments?.length ?? 0) === REPLICAS.length && c.policies.length > 0;
    const a = rows.find((r) => r.proxy === mesh.sidecars.orders.proxyId);
    if (complete && rows.length === 3 && a?.config_version === c.version && rows.every((r) => r.status === "ACK")) {
      out.say(`  config         version ${c.version} reached sidecar A (${mesh.sidecars.orders.admin}/config: 2 payments endpoints, 1 policy) and every proxy ACKed what it watches (GET /v1/proxies) after ${Date.now() - started} ms`);
      return;
    }
    out.progress(
      complete
        ? `waiting for every proxy to ACK config version ${c.version}: ${rows.map((r) => `${r.proxy} ${r.status} ${r.config_version ?? "-"}`).join(", ")}`
        : `waiting for sidecar A's config: ${c.endpoints.payments?.length ?? 0} of ${REPLICAS.length} payments endpoints, ${c.policies.length} policy (version ${c.version})`,
    );
    if (Date.now() - started > 30_000) throw new RemoraError("ERR_CONTROL", "the sidecars did not all receive and ACK the same config within 30s; see `remora get proxies`.");
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Applies a policy through the API and waits for sidecar A's ACK in GET /v1/proxies. */
async function applyAndWaitForAck(mesh: DemoMesh, yaml: string, out: Output): Promise<string | undefined> {
  const started = Date.now();
  const res = (await mesh.api.request("PUT", "/v1/policies?source=payments.yaml", { text: yaml, contentType: "application/yaml" })) as { version: string };
  out.say(`   control plane: PUT /v1/policies -> config version ${res.version}`);
  const orders = mesh.sidecars.orders.proxyId;
  const rows = await untilProxies(
    mesh,
    (rs) => rs.some((r) => r.proxy === orders && r.config_version === res.version && r.status === "ACK"),
    10_000,
    (rs) => out.progress(`waiting for ${orders} to ACK version ${res.version}: ${rs.find((r) => r.proxy === orders)?.status ?? "?"}`),
  );
  const row = rows?.find((r) => r.proxy === orders);
  out.say(row ? `   GET /v1/proxies: ${orders} ACK for version ${res.version} after ${Date.now() - started} ms` : `   ${orders} did not ACK version ${res.version} within 10s`, { ack: row ?? null });
  return row ? res.version : undefined;
}

/** Polls sidecar A's /endpoints (which runs outlier detection's sweep) until the replica's uneject event shows on the feed. */
async function waitForReturn(mesh: DemoMesh, endpoint: string, from: number, out: Output): Promise<FeedEvent | undefined> {
  const eject = mesh.feeds.orders.events.find((e) => e.type === "eject" && e.endpoint === endpoint);
  const until = eject?.type === "eject" ? eject.untilMs : Date.now();
  const deadline = Math.max(until, Date.now()) + 15_000;
  while (Date.now() < deadline) {
    const hit = await mesh.feeds.orders.waitFor(from, (e) => e.type === "uneject" && e.endpoint === endpoint, 250);
    if (hit) return hit.event;
    const list = await adminJson<{ destination: string; endpoints: { address: string; state: string; ejected_for_ms?: number }[] }[]>(mesh.sidecars.orders, "/endpoints");
    const ep = list.find((d) => d.destination === "payments")?.endpoints.find((e) => e.address === endpoint);
    out.progress(`${mesh.cast.short(endpoint)} is ${ep?.state ?? "?"}${ep?.ejected_for_ms !== undefined ? `, back in ${(ep.ejected_for_ms / 1000).toFixed(1)} s` : ""} (GET ${mesh.sidecars.orders.admin}/endpoints)`);
  }
  return undefined;
}

/** The first call told event by event: sidecar A's feed, the replicas' inbound records, the apps' counts. */
async function narrateCall(c: Call, mesh: DemoMesh, out: Output, resets: Record<Replica, number>): Promise<void> {
  const { cast, feeds } = mesh;
  const requestId = c.record?.requestId;
  const replicaOf = (address: string) => REPLICAS.find((r) => mesh.sidecars[r].inbound === address);
  // The callee's record of each attempt, matched by x-request-id, which sidecar A sends on.
  const expected = new Map<Replica, number>();
  for (const e of c.events) {
    const r = e.type === "pick" ? replicaOf(e.endpoint) : undefined;
    if (r) expected.set(r, (expected.get(r) ?? 0) + 1);
  }
  const inbound = new Map<Replica, RequestRecord[]>();
  for (const [r, n] of expected) {
    const feed: Feed = feeds[r as SidecarName];
    const mine = () => feed.events.filter((e): e is FeedEvent & RequestRecord => e.type === "request" && e.requestId === requestId);
    await feed.waitFor(0, () => mine().length >= n, 2_000);
    inbound.set(r, mine());
  }
  const said = new Set<Replica>();
  const tellInbound = (endpoint: string) => {
    const r = replicaOf(endpoint);
    const rec = r ? inbound.get(r)?.shift() : undefined;
    if (!r || !rec) return;
    out.say(`   ${describeInbound(r, rec)}`);
    if (!said.has(r) && resets[r] > 0) out.say(`   payments ${r} app: reset ${resets[r]} connection(s) during this call (it is mid-deploy)`);
    said.add(r);
  };
  for (const e of c.events) {
    if (e.type === "attempt-failed" || (e.type === "response" && e.endpoint)) tellInbound(e.endpoint!);
    const line = describeOutbound(e, cast);
    if (line) out.say(`   ${line}`);
  }
  if (c.app.status === 0) {
    out.say(`   orders app: no answer (${c.app.body})`);
    return;
  }
  let detail = "";
  try {
    const j = JSON.parse(c.app.body) as { replica?: string; caller?: string };
    if (j.replica) detail = ` from payments ${j.replica}; that app saw the caller as ${j.caller}`;
  } catch {
    // not the payments app's JSON: a sidecar's error reply
    detail = `: ${c.app.body.trim()}`;
  }
  out.say(`   orders app: got ${c.app.status} in ${c.app.ms.toFixed(1)} ms${detail}`);
}

/** The trace of the first retried request, from the spans the sidecars exported to the collector. */
async function printTrace(mesh: DemoMesh, first: Call | undefined, out: Output): Promise<void> {
  const candidates = mesh.feeds.orders.events.filter((e): e is FeedEvent & RequestRecord => e.type === "request" && e.direction === "outbound");
  const retried = candidates.find((r) => (r.attempts ?? 0) > 1) ?? (first?.record as (FeedEvent & RequestRecord) | undefined);
  if (!retried) return;
  const attempts = retried.attempts ?? 1;
  // Sidecars batch spans for about a second; wait for the caller's hop, its attempts and the callees' spans.
  out.progress(`waiting for the spans of trace ${retried.traceId} at the collector…`);
  const spans = await mesh.collector.waitForTrace(retried.traceId, (s) => s.length >= 1 + attempts * 2, 5_000);
  out.say();
  out.say(`trace ${retried.traceId} (the first request that was retried, ${attempts} attempt(s); ${spans.length} spans exported by the sidecars to ${mesh.collector.url}/v1/traces):`);
  for (const line of traceTree(spans, mesh.cast.label)) out.say(`  ${line}`);
  out.record("trace", { traceId: retried.traceId, spans });
}

/** "on-demand: 1" (the destinations a sidecar watches) or "whole mesh: 3", from GET /v1/proxies. */
function watches(p: { config_mode?: string; destinations?: number }): string {
  if (p.config_mode === undefined) return "-";
  return `${p.config_mode === "on-demand" ? "on-demand" : "whole mesh"}: ${p.destinations ?? "?"}`;
}
