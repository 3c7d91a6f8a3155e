// The demo's plain apps: they know nothing of remora. Payments answers a charge or,
// while "flapping", resets the connection the way a replica mid-deploy does; orders is a
// client that makes one plain HTTP call per charge through its sidecar.

import { Agent, createServer, request, type Server } from "node:http";

export interface PaymentsApp {
  readonly name: string;
  readonly address: string;
  flapping: boolean;
  /** Requests that reached this app (reset or answered). */
  hits: number;
  /** Connections this app reset, by its own count. */
  resets: number;
  close(): Promise<void>;
}

export async function startPaymentsApp(name: string, flapping: boolean): Promise<PaymentsApp> {
  const app: PaymentsApp = { name, address: "", flapping, hits: 0, resets: 0, close: async () => {} };
  const server: Server = createServer((req, res) => {
    app.hits++;
    if (app.flapping) {
      app.resets++;
      // A TCP RST where the runtime can send one (Node), a plain close elsewhere.
      if (typeof req.socket.resetAndDestroy === "function") req.socket.resetAndDestroy();
      else req.socket.destroy();
      return;
    }
    const body = JSON.stringify({ charged: true, replica: name, caller: req.headers["x-forwarded-client-cert"] ?? null, traceparent: req.headers["traceparent"] ?? null });
    res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
  await new Promise<void>((ok, fail) => server.once("error", fail).listen(0, "127.0.0.1", ok));
  const port = (server.address() as { port: number }).port;
  Object.assign(app, {
    address: `127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => { server.closeAllConnections(); server.close(() => ok()); }),
  });
  return app;
}

export interface CallResult {
  status: number;
  body: string;
  ms: number;
}

export interface OrdersApp {
  /** One `POST http://payments/charge`, sent to its sidecar as a proxy request (curl -x). */
  charge(signal?: AbortSignal): Promise<CallResult>;
  /** Closes its kept-alive connection to the sidecar, so the sidecar can drain at once. */
  close(): void;
}

/** The orders app: an HTTP client with a keep-alive connection to its sidecar's outbound listener. */
export function ordersApp(outbound: string): OrdersApp {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  return { charge: (signal) => charge(outbound, signal, agent), close: () => agent.destroy() };
}

/** What the orders app does: `POST http://payments/charge`, sent to its sidecar as a proxy request (curl -x). */
export function charge(outbound: string, signal?: AbortSignal, agent?: Agent): Promise<CallResult> {
  const [host, port] = splitHostPort(outbound);
  const start = performance.now();
  return new Promise((ok, fail) => {
    const req = request(
      { host, port, method: "POST", path: "http://payments/charge", headers: { host: "payments", "content-type": "application/json" }, signal, ...(agent ? { agent } : {}) },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (body += c));
        res.on("end", () => ok({ status: res.statusCode ?? 0, body, ms: performance.now() - start }));
        res.on("error", fail);
      },
    );
    req.on("error", fail);
    req.end(JSON.stringify({ amount: 4200, currency: "EUR" }));
  });
}

function splitHostPort(a: string): [string, number] {
  const i = a.lastIndexOf(":");
  return [a.slice(0, i).replace(/^\[|\]$/g, ""), Number(a.slice(i + 1))];
}
