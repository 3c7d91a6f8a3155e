// `POST /v2/config` (docs/control-api.md "On-demand config"): a long-poll where the sidecar
// names the destinations it watches and the version it holds of each; the answer carries
// only those whose version differs. The server keeps no subscription state: the request is
// the subscription, so any replica can answer it and a new name is one new request.

import * as v from "valibot";
import { validate } from "../../core/validation.ts";
import type { AuthorizationResource, DestinationResource, ResourceView } from "./resources.ts";

/** A sidecar calling more distinct names than this is misconfigured (or scanning). */
export const MAX_DESTINATIONS = 10_000;
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

const watchRequest = v.strictObject({
  proxy: v.string(),
  /** Seconds to hold the request when nothing differs. */
  wait: v.optional(v.pipe(v.number(), v.minValue(0)), 30),
  /** destination -> version held ("" when none yet). */
  destinations: v.pipe(
    v.record(v.pipe(v.string(), v.regex(NAME, "is not a service name (lowercase letters, digits, \".\" and \"-\")")), v.string()),
    v.check((r) => Object.keys(r).length <= MAX_DESTINATIONS, `names more than ${MAX_DESTINATIONS} destinations`),
  ),
  /** Version held of the caller's own authorization ("" when none yet). */
  authorization: v.optional(v.string(), ""),
});

export type WatchRequest = v.InferOutput<typeof watchRequest>;

export interface WatchAnswer {
  /** The control plane's state version this answer was cut from (the ACK names it). */
  version: string;
  destinations: Record<string, DestinationResource>;
  authorization?: AuthorizationResource;
}

export function parseWatchRequest(body: unknown): WatchRequest {
  return validate(watchRequest, body, { code: "ERR_REQUEST_INVALID", source: "config watch" });
}

/** What differs between what the caller holds and `view`; undefined when nothing does. */
export function delta(view: ResourceView, req: WatchRequest, service: string): WatchAnswer | undefined {
  const destinations: Record<string, DestinationResource> = {};
  let changed = false;
  for (const [name, held] of Object.entries(req.destinations)) {
    const r = view.destination(name);
    if (r.version !== held) {
      destinations[name] = r;
      changed = true;
    }
  }
  const authz = view.authorization(service);
  const authzChanged = authz.version !== req.authorization;
  if (!changed && !authzChanged) return undefined;
  return { version: String(view.stateVersion), destinations, ...(authzChanged ? { authorization: authz } : {}) };
}

export interface WatchDeps {
  view: () => ResourceView;
  /** The plane's waitForChange: true on any state change, false on timeout or abort. */
  waitForChange: (version: string, waitMs: number, signal?: AbortSignal) => Promise<boolean>;
  now: () => number;
}

/**
 * Answers at once when anything the caller holds is stale, else waits. Every state change
 * wakes every waiter, but one whose destinations did not change goes back to waiting with
 * nothing sent: a change to one destination reaches only the sidecars that watch it.
 */
export async function watch(deps: WatchDeps, req: WatchRequest, service: string, waitMs: number, signal?: AbortSignal): Promise<WatchAnswer | undefined> {
  const deadline = deps.now() + waitMs;
  for (;;) {
    const view = deps.view();
    const answer = delta(view, req, service);
    if (answer !== undefined) return answer;
    const left = deadline - deps.now();
    if (left <= 0 || signal?.aborted) return undefined;
    if (!(await deps.waitForChange(String(view.stateVersion), left, signal))) return undefined;
  }
}
