// A retry budget as Linkerd enforces it (Tower's TpsBudget, tower/src/retry/budget/tps_budget.rs):
// every original request deposits, every retry withdraws, deposits and withdrawals expire
// after `ttl`, and a reserve of minRetriesPerSecond x ttl retries is always there on top.

import type { RetryBudget } from "../policy/types.ts";

/** Tower keeps the window in 10 slots of ttl/10 each, so old entries leave in steps. */
const SLOTS = 10;
/** Deposits of 0.2 add up to 0.9999999999999999, not 1: compare with a little slack. */
const EPSILON = 1e-9;

export class TpsBudget {
  readonly config: Readonly<RetryBudget>;
  readonly #slotMs: number;
  readonly #reserve: number;
  /** Balance per slot, in retries; `#generation[i]` is the slot number it belongs to. */
  readonly #balance = new Float64Array(SLOTS);
  readonly #generation = new Float64Array(SLOTS).fill(-Infinity);

  constructor(config: Readonly<RetryBudget>) {
    this.config = config;
    this.#slotMs = Math.max(1, config.ttlMs / SLOTS);
    this.#reserve = config.minRetriesPerSecond * (config.ttlMs / 1000);
  }

  /** An original request: it earns `retryRatio` of a retry for the next ttl. */
  deposit(nowMs: number): void {
    this.#add(nowMs, this.config.retryRatio);
  }

  /** Takes one retry from the budget if there is one; false (and nothing taken) if not. */
  withdraw(nowMs: number): boolean {
    if (this.available(nowMs) < 1 - EPSILON) return false;
    this.#add(nowMs, -1);
    return true;
  }

  /** Retries the budget would allow now: reserve plus what the window holds. */
  available(nowMs: number): number {
    const current = Math.floor(nowMs / this.#slotMs);
    let sum = this.#reserve;
    for (let i = 0; i < SLOTS; i++) {
      const g = this.#generation[i] ?? -Infinity;
      if (g > current - SLOTS && g <= current) sum += this.#balance[i] ?? 0;
    }
    return sum;
  }

  #add(nowMs: number, amount: number): void {
    const generation = Math.floor(nowMs / this.#slotMs);
    const i = ((generation % SLOTS) + SLOTS) % SLOTS;
    if (this.#generation[i] !== generation) {
      this.#generation[i] = generation;
      this.#balance[i] = 0;
    }
    this.#balance[i] = (this.#balance[i] ?? 0) + amount;
  }
}
