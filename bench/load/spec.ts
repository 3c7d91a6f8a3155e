// What the bench asks of the load generator, and what it answers (bench/load/generator.ts).

export interface LoadSpec {
  /** host:port the generator connects to. */
  target: string;
  /** Host header: the logical destination ("payments"). */
  host: string;
  path: string;
  /** GET (default) or POST with `body`. */
  method?: string;
  body?: string;
  /** open: a fixed rate, latency from the intended send time; closed: back to back, maximum throughput. */
  mode: "open" | "closed";
  /** Requests per second (open loop). */
  rate?: number;
  /** Keep-alive connections in the pool. */
  connections: number;
  /** Sent but not recorded before the measured window. */
  warmupMs: number;
  durationMs: number;
  /** A request without a complete response after this long counts as an error. */
  timeoutMs: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LoadResult {
  mode: "open" | "closed";
  targetRps?: number;
  durationMs: number;
  connections: number;
  sent: number;
  /** Requests intended in the measured window that finished, well or not. */
  completed: number;
  /** Of those, answered 2xx. */
  ok: number;
  /** 2xx responses that arrived inside the measured window, per second. */
  achievedRps: number;
  errors: number;
  errorKinds: Record<string, number>;
  statuses: Record<string, number>;
  /** Requests of the measured window still queued for a connection when it closed (never sent). */
  unsent: number;
  latencyMs: Percentiles;
  /** How late the generator's timer loop dispatched requests (its own lag, not the server's). */
  dispatchLagMs: { p50: number; p99: number; max: number };
  /** Generator CPU over the measured window, in cores (1 = one core saturated). */
  generatorCpuCores: number;
  reconnects: number;
}

/** The handshake benchmark (bench/load/handshake.ts): file paths of the client's SVID. */
export interface HandshakeSpec {
  target: string;
  count: number;
  concurrency: number;
  cert: string;
  key: string;
  ca: string;
}

export interface HandshakeResult {
  count: number;
  ok: number;
  errors: Record<string, number>;
  wallMs: number;
  handshakesPerSec: number;
  /** TCP connect to secureConnect, ms. */
  timeMs: { p50: number; p90: number; p99: number; max: number };
  protocol: string;
  cipher: string;
  clientCpuCores: number;
}
