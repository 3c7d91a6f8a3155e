// Test helpers for the outbound path: a scripted in-memory Upstream that records every
// attempt (body bytes included), a Policy builder, and a harness wiring both to a FakeClock.

import type { Random } from "../../src/core/clock.ts";
import type { Endpoint } from "../../src/core/endpoint.ts";
import type { MeshEvent } from "../../src/core/events.ts";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createOutbound, type Outbound, type OutboundConfig } from "../../src/core/pipeline.ts";
import type { LoadBalancer, OutlierPolicy, Policy, RetryOn } from "../../src/core/policy/types.ts";
import { type OriginationMode, type Upstream, UpstreamError, type UpstreamErrorKind } from "../../src/core/upstream.ts";

/** What an endpoint does with one attempt. */
export type Reply =
  | number
  | UpstreamErrorKind
  | "hang"
  | { delayMs: number; then: Reply }
  | ((req: Request) => Response | Promise<Response>);

export interface Call {
  address: string;
  method: string;
  url: string;
  headers: Headers;
  body: Uint8Array;
  tls: OriginationMode;
  atMs: number;
  signal: AbortSignal;
}

export class FakeUpstream {
  readonly calls: Call[] = [];
  readonly #clock: FakeClock;
  readonly #queues = new Map<string, Reply[]>();
  readonly #fallback = new Map<string, Reply>();

  constructor(clock: FakeClock) {
    this.#clock = clock;
  }

  /** Queue replies for the next attempts to `address`; after them, its fallback (default 200). */
  on(address: string, ...replies: Reply[]): this {
    this.#queues.set(address, [...(this.#queues.get(address) ?? []), ...replies]);
    return this;
  }

  always(address: string, reply: Reply): this {
    this.#fallback.set(address, reply);
    return this;
  }

  callsTo(address: string): Call[] {
    return this.calls.filter((c) => c.address === address);
  }

  readonly send: Upstream = async (req, endpoint, options) => {
    const body = new Uint8Array(await req.arrayBuffer());
    this.calls.push({ address: endpoint.address, method: req.method, url: req.url, headers: req.headers, body, tls: options.tls, atMs: this.#clock.now(), signal: options.signal });
    const reply = this.#queues.get(endpoint.address)?.shift() ?? this.#fallback.get(endpoint.address) ?? 200;
    return this.#play(reply, req, endpoint, options);
  };

  async #play(reply: Reply, req: Request, endpoint: Endpoint, options: Parameters<Upstream>[2]): Promise<Response> {
    if (typeof reply === "object") {
      await this.#clock.sleep(reply.delayMs, options.signal);
      return this.#play(reply.then, req, endpoint, options);
    }
    if (reply === "hang") {
      return new Promise((_, reject) => {
        if (options.signal.aborted) reject(options.signal.reason);
        options.signal.addEventListener("abort", () => reject(options.signal.reason), { once: true });
      });
    }
    if (typeof reply === "string") {
      throw new UpstreamError(reply, endpoint.address, `fake ${reply} at ${endpoint.address}`);
    }
    if (options.tls !== "DISABLE") {
      options.onConnection?.({ reused: false, handshakeMs: 1, ...(endpoint.identity !== undefined ? { peerIdentity: endpoint.identity } : {}) });
    }
    if (typeof reply === "function") return reply(req);
    return new Response(`${reply} from ${endpoint.address}`, { status: reply });
  }
}

export interface PolicyOverrides {
  destination?: string;
  loadBalancer?: LoadBalancer;
  retryOn?: string;
  numRetries?: number;
  perTryTimeoutMs?: number;
  retriableStatusCodes?: number[];
  backoff?: { baseMs: number; maxMs: number };
  timeoutMs?: number;
  tls?: "MUTUAL" | "SIMPLE" | "DISABLE";
  retryBufferBytes?: number;
  /** Partial outlier policy (defaults: 5 x 5xx, gateway off, 10 s / 30 s / 300 s, 10%); absent: no detection. */
  outlier?: Partial<OutlierPolicy>;
}

export function outlierPolicy(o: Partial<OutlierPolicy> = {}): OutlierPolicy {
  return { consecutive5xx: 5, consecutiveGatewayFailure: 0, intervalMs: 10_000, baseEjectionMs: 30_000, maxEjectionMs: 300_000, maxEjectionPercent: 10, ...o };
}

/** A Policy with the reference scenario's values unless overridden. */
export function policy(o: PolicyOverrides = {}): Policy {
  const retryOn = new Set((o.retryOn ?? "connect-failure,5xx,reset").split(",").filter((s) => s !== "") as RetryOn[]);
  return {
    route: {
      destination: o.destination ?? "payments",
      loadBalancer: o.loadBalancer ?? "round_robin",
      retry: {
        retryOn,
        numRetries: o.numRetries ?? 2,
        ...(o.perTryTimeoutMs !== undefined ? { perTryTimeoutMs: o.perTryTimeoutMs } : {}),
        retriableStatusCodes: o.retriableStatusCodes ?? [],
        backoff: o.backoff ?? { baseMs: 25, maxMs: 250 },
      },
      timeoutMs: o.timeoutMs ?? 15_000,
      tls: { mode: o.tls ?? "MUTUAL" },
      retryBufferBytes: o.retryBufferBytes ?? 65_536,
    },
    ...(o.outlier !== undefined ? { outlier: outlierPolicy(o.outlier) } : {}),
  };
}

/** Cycles through `values` (each in [0, 1)). */
export function sequence(...values: number[]): Random {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

export const B1 = "192.0.2.1:15006";
export const B2 = "192.0.2.2:15006";
export const B3 = "192.0.2.3:15006";
export const B4 = "192.0.2.4:15006";

export function endpoints(...addresses: string[]): Endpoint[] {
  return addresses.map((address, i) => ({ address, identity: `spiffe://cluster.local/ns/default/sa/payments-${i + 1}` }));
}

export interface Harness {
  clock: FakeClock;
  upstream: FakeUpstream;
  outbound: Outbound;
  events: MeshEvent[];
  /** Sends a request through the outbound path and drives the fake clock until it answers. */
  call(input?: string | Request, init?: RequestInit): Promise<Response>;
  eventsOf<T extends MeshEvent["type"]>(type: T): Extract<MeshEvent, { type: T }>[];
}

export function harness(options: { policies?: Policy[]; endpoints?: OutboundConfig["endpoints"]; random?: Random; startMs?: number } = {}): Harness {
  const clock = new FakeClock(options.startMs ?? 0);
  const upstream = new FakeUpstream(clock);
  const events: MeshEvent[] = [];
  let n = 0;
  const outbound = createOutbound(
    { policies: options.policies ?? [policy()], endpoints: options.endpoints ?? { payments: endpoints(B1, B2) } },
    {
      send: upstream.send,
      clock,
      random: options.random ?? sequence(0),
      onEvent: (e) => events.push(e),
      requestId: () => `req-${++n}`,
      defaultPolicy: (destination) => policy({ destination, retryOn: "connect-failure,refused-stream,retriable-status-codes", retriableStatusCodes: [503] }),
    },
  );
  return {
    clock,
    upstream,
    outbound,
    events,
    call(input = "http://payments/charge", init) {
      const req = typeof input === "string" ? new Request(input, init) : input;
      return clock.run(outbound.handle(req));
    },
    eventsOf<T extends MeshEvent["type"]>(type: T) {
      return events.filter((e): e is Extract<MeshEvent, { type: T }> => e.type === type);
    },
  };
}
