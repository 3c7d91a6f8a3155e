// Small loopback utilities for integration tests: raw node:http(s) requests, promises
// resolved from the outside, and a port nobody listens on.

import http from "node:http";
import https from "node:https";
import net from "node:net";

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with node's own client (agent: false), so listener tests don't depend on our upstream. */
export function rawRequest(
  options: https.RequestOptions & { secure?: boolean },
  body?: string,
): Promise<RawResponse> {
  const { secure, ...rest } = options;
  return new Promise((resolve, reject) => {
    const req = (secure ? https : http).request({ host: "127.0.0.1", agent: false, ...rest }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => { text += chunk; });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

/** A loopback port that was free a moment ago and has no listener now. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

