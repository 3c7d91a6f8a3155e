// Small AbortSignal helpers: AbortSignal.any is missing on older runtimes, and an
// attempt must stop when the client leaves, the route times out or its try times out.

import type { Clock } from "../clock.ts";

/** A signal that aborts when any of `signals` does, with that signal's reason. */
export function anySignal(signals: readonly (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  if (present.length === 1 && present[0] !== undefined) return present[0];
  const native = (AbortSignal as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (typeof native === "function") return native.call(AbortSignal, present);
  const controller = new AbortController();
  for (const s of present) {
    if (s.aborted) {
      controller.abort(s.reason);
      break;
    }
    s.addEventListener("abort", () => controller.abort(s.reason), { once: true, signal: controller.signal });
  }
  return controller.signal;
}

/**
 * Settles like `promise`, unless `signal` aborts first: then rejects with its reason at
 * once (an upstream that ignores its signal cannot hold the request), and a value that
 * arrives late is handed to `discard` so nothing leaks.
 */
export function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, discard?: (late: T) => void): Promise<T> {
  if (signal.aborted) {
    promise.then((v) => discard?.(v), () => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      done = true;
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        if (done) discard?.(v);
        else resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        if (!done) reject(e);
      },
    );
  });
}

/** Runs `onExpire` after `ms` on `clock` unless cancelled first; no timer outlives cancel(). */
export function deadline(clock: Pick<Clock, "sleep" | "after">, ms: number, onExpire: () => void): { cancel(): void } {
  if (clock.after) return { cancel: clock.after(ms, onExpire) };
  const cancel = new AbortController();
  clock.sleep(ms, cancel.signal).then(onExpire, () => {});
  return { cancel: () => cancel.abort() };
}

/** Cancels a response body we will not use, so its stream and connection are released. */
export function discardResponse(res: Response): void {
  if (res.body !== null && !res.bodyUsed) res.body.cancel().catch(() => {});
}
