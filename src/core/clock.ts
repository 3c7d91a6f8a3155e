// Time is injected everywhere in the core so tests run on a fake clock with no sleeps.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason if aborted first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** An AbortSignal that aborts (reason: a TimeoutError DOMException) after `ms`. */
  timeout(ms: number): AbortSignal;
  /**
   * Calls `fn` after `ms` unless the returned cancel runs first. Optional (sleep does the
   * same): it is the cheap form for the per-request deadlines, which are almost always
   * cancelled, and a cancelled sleep costs an AbortController and a DOMException.
   */
  after?(ms: number, fn: () => void): () => void;
}

/** Random source in [0, 1); injected so balancing and jitter are reproducible in tests. */
export type Random = () => number;
