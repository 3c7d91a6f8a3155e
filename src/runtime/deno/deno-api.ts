// The slice of Deno's native API the Deno adapter uses, typed here because the project is
// type-checked against @types/node. Shapes follow Deno 2.9's lib.deno.ns.d.ts.

export interface DenoNetAddr {
  transport: "tcp" | "udp";
  hostname: string;
  port: number;
}

export interface DenoServeHandlerInfo {
  remoteAddr: DenoNetAddr;
}

export interface DenoHttpServer {
  readonly addr: DenoNetAddr;
  /** Settles once the server has stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /** Stops accepting, closes idle connections and waits for in-flight requests. */
  shutdown(): Promise<void>;
}

export interface DenoServeOptions {
  hostname: string;
  port: number;
  signal?: AbortSignal;
  /** On by default: Deno would gzip/brotli responses itself, which a proxy must not do. */
  automaticCompression?: boolean;
  onListen?: (addr: DenoNetAddr) => void;
  onError?: (err: unknown) => Response | Promise<Response>;
}

export interface DenoApi {
  version: { deno: string };
  serve(options: DenoServeOptions, handler: (req: Request, info: DenoServeHandlerInfo) => Response | Promise<Response>): DenoHttpServer;
}

export function denoApi(): DenoApi {
  return (globalThis as unknown as { Deno: DenoApi }).Deno;
}
