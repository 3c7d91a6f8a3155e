// The shape of `GET /v1/stats`: golden metrics per service, per edge (caller service ->
// callee destination) and per proxy, over a window, as `remora stat` and the dashboard read them.

/** Latencies in milliseconds, estimated from histogram buckets; null with no requests. */
export interface Latency {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface Golden {
  /** Requests completed in the window. */
  requests: number;
  /** Requests per second over the window; null until two scrapes span it. */
  rps: number | null;
  /** Share of responses that were not 5xx (0..1); null with no requests. */
  success: number | null;
  latencyMs: Latency;
  /** Retries sent in the window. */
  retries: number;
  /** Endpoints ejected now (the largest count any caller's outlier detector reports). */
  ejected: number;
}

export interface MtlsShare {
  /** Inbound requests in the window that arrived over mTLS, and in plaintext. */
  mtls: number;
  plaintext: number;
  /** mtls / (mtls + plaintext); null when unknown (no requests, or sidecars without the counter). */
  share: number | null;
}

export interface ServiceStats extends Golden {
  name: string;
  /** Proxies of this service registered, and how many of them answered the last scrape. */
  proxies: number;
  meshed: number;
  mtls: MtlsShare;
}

export interface EdgeStats extends Golden {
  /** The caller's service. */
  from: string;
  /** The logical destination it called. */
  to: string;
}

export interface ProxyStats extends Golden {
  proxy: string;
  service: string;
  identity: string;
  admin: string | null;
  /** ISO time of the last successful scrape, and the last failure's sentence if the latest scrape failed. */
  scraped: string | null;
  error: string | null;
  mtls: MtlsShare;
  /** Certificate expiry the sidecar reports (ISO), if known. */
  certExpiry: string | null;
  /** This proxy's calls, per destination. */
  outbound: (Golden & { to: string })[];
  /** Ejections counted by this proxy's outlier detector, per destination and endpoint (all time). */
  ejections: { destination: string; endpoint: string; total: number }[];
  /** This proxy's view of its destinations' endpoints (its admin /endpoints) at the last scrape. */
  endpoints: EndpointHealth[];
}

export interface EndpointHealth {
  destination: string;
  address: string;
  identity: string | null;
  state: "healthy" | "ejected";
  /** ISO time an ejected endpoint returns, as the caller's outlier detector computed it. */
  ejectedUntil: string | null;
}

export interface StatsReport {
  /** ISO time the report was computed, and its window in seconds. */
  time: string;
  windowSeconds: number;
  services: ServiceStats[];
  edges: EdgeStats[];
  proxies: ProxyStats[];
}
