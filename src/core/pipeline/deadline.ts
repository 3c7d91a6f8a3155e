// Deadlines for the route and per-try timeouts, on the injected clock. Nearly every one is
// cancelled because the response came first, so cancelling must be cheap: abort() without
// a reason builds a DOMException, stack trace included (measured in bench/RESULTS.md).

import type { Clock } from "../clock.ts";

/** The one reason every cancelled deadline's sleep rejects with; nobody observes it. */
const CANCELLED: unknown = Object.freeze({ cancelled: true });

/** Runs `onExpire` after `ms` on `clock` unless cancelled first; no timer outlives cancel(). */
export function deadline(clock: Clock, ms: number, onExpire: () => void): { cancel(): void } {
  const cancel = new AbortController();
  clock.sleep(ms, cancel.signal).then(onExpire, () => {});
  return { cancel: () => cancel.abort(CANCELLED) };
}
