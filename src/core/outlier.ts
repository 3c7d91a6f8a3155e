// Outlier detection (passive health checking) as Envoy does it with
// split_external_local_origin_errors=false (outlier.rst, outlier_detection_impl.cc):
// consecutive-error detectors eject inline; un-ejection and the decay of the ejection
// count happen at `interval` sweeps. There are no background timers: sweeps that fell due
// are replayed lazily whenever the state is read or written, using the injected clock.

import type { Clock } from "./clock.ts";
import type { EventSink } from "./events.ts";
import type { OutlierPolicy } from "./policy/types.ts";
import type { AttemptOutcome } from "./retry/outcome.ts";

/** Per-endpoint outlier state; lives as long as the endpoint stays in the destination. */
export interface HostHealth {
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  ejected: boolean;
  ejectedAtMs?: number;
  /** The sweep at which the endpoint returns (ejection time rounded up to a sweep boundary). */
  ejectedUntilMs?: number;
  /** Envoy's ejection multiplier: +1 per ejection, -1 per interval spent healthy. */
  ejectionCount: number;
  /** When the endpoint last returned from ejection (decay starts one interval later). */
  unejectedAtMs?: number;
}

export interface OutlierHost {
  readonly address: string;
  readonly health: HostHealth;
}

export function newHostHealth(): HostHealth {
  return { consecutive5xx: 0, consecutiveGatewayFailure: 0, ejected: false, ejectionCount: 0 };
}

/** Returns an endpoint to service and clears its history (detection switched off). */
export function clearHostHealth(h: HostHealth): void {
  Object.assign(h, newHostHealth(), { ejectedAtMs: undefined, ejectedUntilMs: undefined, unejectedAtMs: undefined });
}

const GATEWAY_ERRORS: ReadonlySet<number> = new Set([502, 503, 504]);

export interface OutlierDetectorOptions {
  destination: string;
  policy: OutlierPolicy;
  clock: Clock;
  onEvent?: EventSink;
}

export class OutlierDetector {
  readonly destination: string;
  #policy: OutlierPolicy;
  readonly #clock: Clock;
  readonly #onEvent: EventSink | undefined;
  /** Sweeps happen at originMs + k * interval, k >= 1 (origin: when the detector was made). */
  #originMs: number;
  #lastSweep = 0;

  constructor(options: OutlierDetectorOptions) {
    this.destination = options.destination;
    this.#policy = options.policy;
    this.#clock = options.clock;
    this.#onEvent = options.onEvent;
    this.#originMs = options.clock.now();
  }

  get policy(): OutlierPolicy {
    return this.#policy;
  }

  /** A new policy applies from now on; current ejections keep their computed end. */
  setPolicy(policy: OutlierPolicy): void {
    if (policy.intervalMs !== this.#policy.intervalMs) {
      // Keep sweeping from the last sweep that happened, at the new pace.
      this.#originMs = this.#sweepTime(this.#lastSweep);
      this.#lastSweep = 0;
    }
    this.#policy = policy;
  }

  /** Replays every interval sweep that fell due since the last call: returns and decay. */
  sweep(hosts: readonly OutlierHost[]): void {
    const interval = this.#intervalMs();
    const due = Math.floor((this.#clock.now() - this.#originMs) / interval);
    if (due <= this.#lastSweep) return;
    const from = this.#lastSweep + 1;
    this.#lastSweep = due;
    for (const host of hosts) this.#sweepHost(host, from, due);
  }

  /** Feeds one attempt's outcome to the consecutive detectors; may eject `host` at once. */
  record(host: OutlierHost, outcome: AttemptOutcome, hosts: readonly OutlierHost[]): void {
    this.sweep(hosts);
    // A circuit-breaker overflow says nothing about the endpoint's health.
    if (outcome.kind === "overflow") return;
    const h = host.health;
    const isError = outcome.kind !== "status" || outcome.status >= 500;
    if (!isError) {
      h.consecutive5xx = 0;
      h.consecutiveGatewayFailure = 0;
      return;
    }
    // Local failures (connect, reset, timeout, TLS) count as a 503/504 would: in both runs.
    const isGateway = outcome.kind !== "status" || GATEWAY_ERRORS.has(outcome.status);
    h.consecutive5xx++;
    h.consecutiveGatewayFailure = isGateway ? h.consecutiveGatewayFailure + 1 : 0;
    // Results that arrive while ejected (in-flight or panic traffic) cannot eject it again.
    if (h.ejected) return;
    const p = this.#policy;
    if (p.consecutive5xx > 0 && h.consecutive5xx >= p.consecutive5xx) this.#tryEject(host, "consecutive_5xx", hosts);
    else if (p.consecutiveGatewayFailure > 0 && h.consecutiveGatewayFailure >= p.consecutiveGatewayFailure) {
      this.#tryEject(host, "consecutive_gateway_failure", hosts);
    }
  }

  #tryEject(host: OutlierHost, reason: "consecutive_5xx" | "consecutive_gateway_failure", hosts: readonly OutlierHost[]): void {
    const h = host.health;
    // Envoy resets the run that tripped the detector whether or not the ejection happens,
    // so a refused ejection is tried again only after another full run.
    h.consecutive5xx = 0;
    h.consecutiveGatewayFailure = 0;
    if (!this.#mayEject(hosts)) return;
    const p = this.#policy;
    const now = this.#clock.now();
    // Envoy (ejectHost): the multiplier stops growing once base x count passes max + base.
    if (h.ejectionCount * p.baseEjectionMs < this.#maxEjectionMs() + p.baseEjectionMs) h.ejectionCount++;
    const durationMs = Math.min(p.baseEjectionMs * h.ejectionCount, this.#maxEjectionMs());
    h.ejected = true;
    h.ejectedAtMs = now;
    h.ejectedUntilMs = this.#sweepTime(this.#firstSweepAtOrAfter(now + durationMs));
    this.#onEvent?.({ type: "eject", destination: this.destination, endpoint: host.address, reason, untilMs: h.ejectedUntilMs, ejectionCount: h.ejectionCount });
  }

  /**
   * max_ejection_percent counts the ejected share after this ejection. remora keeps
   * Envoy's historic always_eject_one_host rule (one ejection is always allowed) and never
   * ejects the last available endpoint.
   */
  #mayEject(hosts: readonly OutlierHost[]): boolean {
    const ejected = hosts.filter((x) => x.health.ejected).length;
    const availableAfter = hosts.length - ejected - 1;
    if (availableAfter < 1) return false;
    if (ejected === 0) return true;
    return ((ejected + 1) / hosts.length) * 100 <= this.#policy.maxEjectionPercent;
  }

  #sweepHost(host: OutlierHost, from: number, to: number): void {
    const h = host.health;
    let decayFrom = from;
    if (h.ejected) {
      const at = Math.max(from, this.#firstSweepAtOrAfter(h.ejectedUntilMs ?? 0));
      if (at > to) return;
      h.ejected = false;
      h.ejectedAtMs = undefined;
      h.ejectedUntilMs = undefined;
      h.consecutive5xx = 0;
      h.consecutiveGatewayFailure = 0;
      h.unejectedAtMs = this.#sweepTime(at);
      decayFrom = at + 1;
      this.#onEvent?.({ type: "uneject", destination: this.destination, endpoint: host.address });
    }
    // Each sweep the endpoint spends healthy, at least one interval after it returned, takes one off.
    if (h.ejectionCount > 0 && h.unejectedAtMs !== undefined) {
      const first = Math.max(decayFrom, this.#firstSweepAtOrAfter(h.unejectedAtMs + this.#intervalMs()));
      if (to >= first) h.ejectionCount = Math.max(0, h.ejectionCount - (to - first + 1));
    }
  }

  /** Envoy: max_ejection_time, or base_ejection_time if that is larger. */
  #maxEjectionMs(): number {
    return Math.max(this.#policy.maxEjectionMs, this.#policy.baseEjectionMs);
  }

  #intervalMs(): number {
    return Math.max(1, this.#policy.intervalMs);
  }

  #firstSweepAtOrAfter(ms: number): number {
    return Math.max(1, Math.ceil((ms - this.#originMs) / this.#intervalMs()));
  }

  #sweepTime(k: number): number {
    return this.#originMs + k * this.#intervalMs();
  }
}
