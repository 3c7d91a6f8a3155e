// A path under test: where the load generator connects, which proxy processes carry the
// traffic (their CPU and memory are what the mesh costs), and the TLS listener the
// handshake benchmark dials.

import type { BenchProcess } from "../support/processes.ts";

export interface PathHandle {
  /** "direct", "remora-node", "remora-bun", "remora-deno", "haproxy". */
  name: string;
  kind: "direct" | "remora" | "haproxy";
  /** What runs the proxies, e.g. "node 24.21.0", "HAProxy 2.6.12". */
  runtime?: string;
  /** The runtime adapter the sidecars reported, when they report one. */
  adapter?: string;
  /** host:port the client (load generator) sends plain HTTP to. */
  entry: string;
  /** Host header the client sends: the logical destination. */
  host: string;
  /** The proxy processes of this path, client side first (none for direct). */
  proxies: BenchProcess[];
  /** The server-side mTLS listener and its process, for the handshake benchmark. */
  tlsServer?: { address: string; process: BenchProcess };
  /** Resident memory of each proxy right after start, before any traffic (MiB). */
  idleRssMiB: number[];
  stop(): Promise<void>;
}

export interface BenchEnv {
  /** Repository root. */
  root: string;
  /** Temporary folder for configs, certificates and logs. */
  dir: string;
  /** The shared upstream app (1 KiB responses). */
  app: string;
  /** Certificate folder written by `remora certs`: root.pem, SERVICE.pem, SERVICE-key.pem. */
  certs: string;
}
