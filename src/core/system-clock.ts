// The real clock: wall time from Date.now and timers from setTimeout. Runtime adapters
// and the sidecar inject it; tests inject FakeClock instead.

import type { Clock } from "./clock.ts";

/** setTimeout's ceiling on every runtime: longer delays fire after 1 ms instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const until = Date.now() + Math.max(0, ms);
    let timer: ReturnType<typeof setTimeout>;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    // A certificate lifetime of months means a renewal sleep beyond the ceiling: wait in chunks.
    const arm = (): void => {
      const left = until - Date.now();
      timer = setTimeout(() => {
        if (until - Date.now() > 0) return arm();
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.min(Math.max(0, left), MAX_TIMER_MS));
    };
    arm();
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function timeout(ms: number): AbortSignal {
  if (ms > MAX_TIMER_MS) {
    // Like AbortSignal.timeout, it must not keep the process alive on its own: unref'd chunks.
    const controller = new AbortController();
    const until = Date.now() + ms;
    const arm = (): void => {
      const timer: { unref?: () => void } = setTimeout(() => {
        if (until - Date.now() > 0) return arm();
        controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError"));
      }, Math.min(until - Date.now(), MAX_TIMER_MS));
      timer.unref?.();
    };
    arm();
    return controller.signal;
  }
  if (typeof AbortSignal.timeout === "function") return AbortSignal.timeout(ms);
  const controller = new AbortController();
  setTimeout(() => controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")), Math.max(0, ms));
  return controller.signal;
}

function after(ms: number, fn: () => void): () => void {
  if (ms > MAX_TIMER_MS) {
    const cancel = new AbortController();
    sleep(ms, cancel.signal).then(fn, () => {});
    return () => cancel.abort();
  }
  const timer = setTimeout(fn, Math.max(0, ms));
  return () => clearTimeout(timer);
}

export const systemClock: Clock = { now: () => Date.now(), sleep, timeout, after };
