// A controllable clock for tests: time moves only when told to, so retries, back-off,
// timeouts and outlier ejection run in microseconds with no sleeps.

import type { Clock } from "./clock.ts";

interface Timer {
  readonly at: number;
  readonly seq: number;
  readonly fire: () => void;
  cancelled: boolean;
}

export interface RunOptions {
  /** Give up (and reject) after this many timer advances; guards against livelock. */
  maxSteps?: number;
}

/** Rounds of microtask flushing between timer advances; each round lets one `await` hop run. */
const FLUSH_ROUNDS = 200;

export class FakeClock implements Clock {
  #now: number;
  #seq = 0;
  #timers: Timer[] = [];

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = (): void => {
        timer.cancelled = true;
        reject(signal?.reason);
      };
      const timer = this.#schedule(ms, () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  timeout(ms: number): AbortSignal {
    const controller = new AbortController();
    this.#schedule(ms, () => controller.abort(new DOMException(`timed out after ${ms} ms`, "TimeoutError")));
    return controller.signal;
  }

  after(ms: number, fn: () => void): () => void {
    const timer = this.#schedule(ms, fn);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Timers still waiting to fire. */
  pending(): number {
    return this.#live().length;
  }

  /** When the next timer is due, if any. */
  nextTimerAt(): number | undefined {
    return this.#live()[0]?.at;
  }

  /**
   * Moves time forward by `ms`, firing every timer due by then in due order, including
   * timers that callbacks schedule during the advance. Promise continuations run later,
   * on the microtask queue; use `run()` to interleave them with time.
   */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError(`FakeClock.advance: ms must be >= 0, got ${ms}`);
    this.advanceTo(this.#now + ms);
  }

  advanceTo(target: number): void {
    for (;;) {
      const next = this.#live()[0];
      if (next === undefined || next.at > target) break;
      this.#now = Math.max(this.#now, next.at);
      next.cancelled = true;
      next.fire();
    }
    this.#now = Math.max(this.#now, target);
  }

  /**
   * Drives `promise` to completion without real time: flushes microtasks, and while it is
   * still pending jumps to the next timer. Rejects loudly if nothing could ever settle it.
   */
  async run<T>(promise: Promise<T>, options: RunOptions = {}): Promise<T> {
    const maxSteps = options.maxSteps ?? 10_000;
    let settled = false;
    const tracked = promise.then(
      (v) => {
        settled = true;
        return v;
      },
      (e: unknown) => {
        settled = true;
        throw e;
      },
    );
    tracked.catch(() => {});
    for (let step = 0; ; step++) {
      await flushMicrotasks();
      if (settled) return tracked;
      const at = this.nextTimerAt();
      if (at === undefined) {
        throw new Error(`FakeClock.run: the promise is still pending at ${this.#now} ms and no timer is scheduled, so it can never settle`);
      }
      if (step >= maxSteps) throw new Error(`FakeClock.run: gave up after ${maxSteps} timer advances (at ${this.#now} ms)`);
      this.advanceTo(at);
    }
  }

  #schedule(ms: number, fire: () => void): Timer {
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fire, cancelled: false };
    this.#timers.push(timer);
    return timer;
  }

  #live(): Timer[] {
    this.#timers = this.#timers.filter((t) => !t.cancelled);
    this.#timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
    return this.#timers;
  }
}

async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < FLUSH_ROUNDS; i++) await new Promise<void>((resolve) => queueMicrotask(resolve));
}
