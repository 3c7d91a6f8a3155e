// The on-demand config watch (`POST /v2/config`): long-polls with the destinations held and
// their versions, applies what changed one destination at a time, and ACKs or NACKs. A new
// name (the app called it) cancels the poll in flight so the next one carries it at once;
// a name unused past its idle limit leaves the config before the next poll stops naming it.

import type { ControlRequestOptions, ControlResponse, ControlTarget } from "../control-client.ts";
import type { Logger } from "../logger.ts";
import type { Subscriptions } from "./subscriptions.ts";
import { parseAnswer } from "./destinations.ts";
import type { Policy } from "../../core/policy/types.ts";
import { logicalName } from "../../core/router.ts";

export interface OnDemandWatchDeps {
  call(method: string, path: string, body: unknown, options: ControlRequestOptions): Promise<ControlResponse>;
  subscriptions: Subscriptions;
  proxyId: string;
  waitSeconds: number;
  log: Logger;
  backoff(attempt: number): Promise<void>;
  stopped: AbortSignal;
  ack(version: string, error?: string): Promise<void>;
  /** After every answer whose config was (at least partly) applied. */
  applied(version: string): void;
}

export async function onDemandWatchLoop(d: OnDemandWatchDeps, target: ControlTarget): Promise<void> {
  const apply = target.applyDestinations?.bind(target);
  if (apply === undefined) throw new Error("onDemandWatchLoop: the target cannot apply per-destination updates");
  let authorization = "";
  let version: string | undefined;
  for (let attempt = 0; ; ) {
    const unused = d.subscriptions.expire();
    if (unused.length > 0 && version !== undefined) {
      // Stale endpoints are worse than none: an unwatched destination is rediscovered on its next request.
      try {
        apply({ version, set: {}, remove: unused });
        d.log.info({ destinations: unused }, "stopped watching destinations the app no longer calls");
      } catch (e) {
        d.log.error({ destinations: unused, error: (e as Error)?.message ?? String(e) }, "could not drop unused destinations");
      }
    }
    const resubscribe = new AbortController();
    d.subscriptions.onSubscribe(() => resubscribe.abort());
    let res: ControlResponse;
    try {
      const body = { proxy: d.proxyId, wait: d.waitSeconds, destinations: d.subscriptions.held(), authorization };
      res = await d.call("POST", "/v2/config", body, { mtls: true, timeoutMs: (d.waitSeconds + 15) * 1000, signal: resubscribe.signal });
    } catch {
      if (d.stopped.aborted) return;
      if (resubscribe.signal.aborted) continue;
      await d.backoff(attempt++);
      continue;
    } finally {
      d.subscriptions.onSubscribe(undefined);
    }
    attempt = 0;
    if (res.status === 304) continue;
    if (res.status !== 200) {
      const error = (res.json as { error?: unknown } | undefined)?.error;
      d.log.error({ status: res.status, error }, "the control plane refused the on-demand config watch");
      await d.backoff(attempt++);
      continue;
    }
    let answer: ReturnType<typeof parseAnswer>;
    try {
      answer = parseAnswer(res.json);
    } catch (e) {
      d.log.error({ error: (e as Error).message }, "the control plane sent an unusable on-demand config; ignoring it");
      await d.backoff(attempt++);
      continue;
    }
    const rejected = { ...answer.rejected };
    const { update } = answer;
    version = answer.version;
    // Applied even when empty (an answer with only the authorization): it marks the sidecar configured.
    try {
      apply(update);
    } catch (e) {
      // The pipeline refused the lot (built before swapped, so nothing of it applied).
      for (const name of [...Object.keys(update.set), ...update.remove]) rejected[name] = (e as Error)?.message ?? String(e);
    }
    if (answer.authorization !== undefined) {
      const a = answer.authorization;
      authorization = a.version;
      if (a.error === undefined) target.applyAuthorization(a.document === undefined ? [] : [a.document]);
      else rejected["authorization"] = a.error;
    }
    d.subscriptions.answered(answer.seen, rejected);
    // A mirror's destination gets no request of its own to discover it: watch it with its source.
    for (const [name, dest] of Object.entries(update.set)) if (rejected[name] === undefined) d.subscriptions.references(name, mirrorTargets(dest.policy));
    const errors = Object.values(rejected);
    for (const [name, error] of Object.entries(rejected)) d.log.error({ version: answer.version, destination: name, error }, "config for a destination rejected; keeping its last good config");
    d.applied(answer.version);
    await d.ack(answer.version, errors.length === 0 ? undefined : errors.join("; "));
  }
}

function mirrorTargets(policy: Policy | undefined): string[] {
  return [...new Set((policy?.route.rules ?? []).flatMap((r) => (r.mirror ? [logicalName(r.mirror.destination)] : [])))];
}
