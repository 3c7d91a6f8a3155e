// The destinations an on-demand sidecar watches: the declared ones (`--destinations`) from
// the start, and every name its app calls, subscribed on the first request. That request
// waits a bounded time for the control plane's answer (Envoy's on-demand CDS does the same),
// then proceeds, or gets a 503 whose body names the destination and the reason. A discovered
// name nobody has called for a long while (default 1 h) is dropped, so a sidecar that once
// called many names does not watch them forever; declared names are never dropped. A name a
// held policy points at (a mirror's destination) is watched too, as long as that policy is.

import type { Clock } from "../../core/clock.ts";

/** The control plane's name rule (src/control/ondemand/watch.ts); other hosts are never subscribed. */
const NAME = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;
/** An address, not a name: a VIP held is readdressed before this; any other gets the router's own "no route" answer. */
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const MAX_NAMES = 10_000;
export const DEFAULT_DISCOVERY_TIMEOUT_MS = 5000;
export const DEFAULT_UNWATCH_AFTER_MS = 60 * 60 * 1000;

type Status = "pending" | "found" | "missing" | "rejected";

interface Entry {
  /** The version last answered (applied or refused); "" before the first answer. */
  version: string;
  status: Status;
  /** Why the first version was refused (status "rejected"). */
  error?: string;
  waiters: Set<() => void>;
  /** Declared (`--destinations`): watched for the sidecar's whole life. */
  declared: boolean;
  /** Clock time of the last request to this name (or of the subscription). */
  lastUsed: number;
  /** Other destinations this one's policy sends traffic to (mirrors): kept while this one is. */
  refs: readonly string[];
}

export interface Subscriptions {
  /** name -> version held, for the next watch request. */
  held(): Record<string, string>;
  /**
   * Before routing a request for `name`: undefined to proceed, or the sentence for a 503.
   * Subscribes a new name and waits (bounded) for its first answer.
   */
  discover(name: string, signal?: AbortSignal): Promise<string | undefined>;
  /** Records an answer: versions seen, and whether each destination was found, or refused (kept at its last good). */
  answered(seen: Readonly<Record<string, { version: string; found: boolean }>>, rejected: Readonly<Record<string, string>>): void;
  /** Called when a name is added, so the watch loop re-polls with it at once. */
  onSubscribe(listener: (() => void) | undefined): void;
  /** Drops discovered names not requested for `unwatchAfterMs`; answers them, for the caller to remove from its config. */
  expire(): string[];
  /** Records the destinations `name`'s policy sends traffic to, subscribing any not yet watched. */
  references(name: string, refs: readonly string[]): void;
}

export interface SubscriptionOptions {
  clock: Clock;
  declared?: readonly string[];
  /** How long a request to a new name waits for discovery. Default 5 s. */
  timeoutMs?: number;
  /** A discovered (not declared) name with no request for this long is no longer watched. Default 1 h; 0: never. */
  unwatchAfterMs?: number;
}

export function createSubscriptions(o: SubscriptionOptions): Subscriptions {
  const entries = new Map<string, Entry>();
  const timeoutMs = o.timeoutMs ?? DEFAULT_DISCOVERY_TIMEOUT_MS;
  const unwatchAfterMs = o.unwatchAfterMs ?? DEFAULT_UNWATCH_AFTER_MS;
  let listener: (() => void) | undefined;
  const add = (name: string, declared: boolean): Entry => {
    const e: Entry = { version: "", status: "pending", waiters: new Set(), declared, lastUsed: o.clock.now(), refs: [] };
    entries.set(name, e);
    return e;
  };
  for (const name of o.declared ?? []) add(name.toLowerCase(), true);

  const verdict = (name: string, e: Entry): string | undefined => {
    if (e.status === "found") return undefined;
    if (e.status === "missing") return `remora: no such service "${name}": the control plane knows no policy, endpoint or VIP by that name`;
    if (e.status === "rejected") return `remora: the config for "${name}" was refused: ${e.error ?? "invalid"}`;
    return `remora: discovery of "${name}" timed out after ${timeoutMs} ms: no answer from the control plane`;
  };

  return {
    held: () => Object.fromEntries([...entries].map(([n, e]) => [n, e.version])),
    async discover(name, signal) {
      let e = entries.get(name);
      if (e === undefined) {
        if (IPV4.test(name)) return undefined;
        if (!NAME.test(name)) return `remora: no route for host "${name}": not a service name the control plane can resolve`;
        if (entries.size >= MAX_NAMES) return `remora: no route for "${name}": this sidecar already watches ${MAX_NAMES} destinations`;
        e = add(name, false);
        listener?.();
      }
      e.lastUsed = o.clock.now();
      if (e.status === "pending") {
        const entry = e;
        const stop = new AbortController();
        const wake = () => stop.abort();
        entry.waiters.add(wake);
        signal?.addEventListener("abort", wake, { once: true });
        // The timer rejects when woken early: either way, only the entry's status decides.
        await o.clock.sleep(timeoutMs, stop.signal).catch(() => {});
        entry.waiters.delete(wake);
        signal?.removeEventListener("abort", wake);
      }
      return verdict(name, e);
    },
    answered(seen, rejected) {
      for (const [name, s] of Object.entries(seen)) {
        const e = entries.get(name);
        if (e === undefined) continue;
        e.version = s.version;
        const error = rejected[name];
        if (error === undefined) {
          e.status = s.found ? "found" : "missing";
          delete e.error;
        } else if (e.status !== "found") {
          // A refused update of a destination held before keeps its last good config: still found.
          e.status = "rejected";
          e.error = error;
        }
        for (const wake of e.waiters) wake();
      }
    },
    onSubscribe(l) {
      listener = l;
    },
    expire() {
      if (!(unwatchAfterMs > 0)) return [];
      const cutoff = o.clock.now() - unwatchAfterMs;
      const idle = new Set([...entries].filter(([, e]) => !e.declared && e.waiters.size === 0 && e.lastUsed <= cutoff).map(([n]) => n));
      // A mirror target stays while a kept destination points at it (and so on, down the chain).
      for (let changed = true; changed; ) {
        changed = false;
        for (const [name, e] of entries) {
          if (idle.has(name)) continue;
          for (const r of e.refs) changed = idle.delete(r) || changed;
        }
      }
      for (const name of idle) entries.delete(name);
      return [...idle];
    },
    references(name, refs) {
      const e = entries.get(name);
      if (e === undefined) return;
      e.refs = refs.filter((r) => r !== name);
      let added = false;
      for (const r of e.refs) {
        if (entries.has(r) || !NAME.test(r) || entries.size >= MAX_NAMES) continue;
        add(r, false);
        added = true;
      }
      if (added) listener?.();
    },
  };
}
