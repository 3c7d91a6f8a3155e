// Deno listeners: plain HTTP on Deno.serve; TLS listeners on the node adapter's node:tls
// acceptor, because Deno.serve and Deno.listenTls cannot request a client certificate at
// all, and plain listeners with `streams` on the node adapter too, because Deno.serve
// never shows the raw socket that detection, tunnels and opaque TCP need (docs/runtimes.md).

import { RemoraError } from "../../core/errors.ts";
import type { ConnInfo, Listener, ServeOptions } from "../types.ts";
import { formatHostPort, parseHostPort } from "../node/address.ts";
import { serve as nodeServe } from "../node/serve.ts";
import { listenFailure } from "../listener-common.ts";
import { connInfo } from "../conn-info.ts";
import { denoApi, type DenoHttpServer } from "./deno-api.ts";
import { createCutter } from "./cutter.ts";
import { limitMessage, rejectionResponse, resolveLimits } from "../limits.ts";
import type { LimitReason, ListenerLimits } from "../types.ts";

const DEFAULT_GRACE_MS = 5_000;

export async function serve(options: ServeOptions): Promise<Listener> {
  if (options.tls && options.tls.mode !== "DISABLE") return nodeServe(options);
  if (options.streams) return nodeServe(options);
  return servePlain(options);
}

async function servePlain(options: ServeOptions): Promise<Listener> {
  const { host, port } = parseHostPort(options.listen, "listen address");
  const cutter = createCutter();
  const limits = resolveLimits(options.limits);

  let server: DenoHttpServer;
  try {
    server = denoApi().serve(
      { hostname: host, port, automaticCompression: false, onListen: () => {} },
      async (req, { remoteAddr }) => {
        const info: ConnInfo = connInfo({ remoteAddress: remoteAddr.hostname, remotePort: remoteAddr.port });
        // Deno.serve offers no header, timeout or connection settings; what a handler can
        // see is checked here (docs/runtimes.md lists the rest).
        const over = overLimit(req, limits);
        if (over) {
          const remote = formatHostPort(remoteAddr.hostname, remoteAddr.port);
          options.onRejected?.(over, `${remote}: ${limitMessage(over, limits)}`, remote);
          return rejectionResponse(over, limits);
        }
        const disconnected = new AbortController();
        let answered = false;
        // Deno also aborts request.signal after a successful response ("legacy abort"), so only
        // an abort before the handler answered means the client went away; once the body
        // streams, a client that leaves cancels the body stream instead.
        const onAbort = () => {
          if (!answered) disconnected.abort(new Error(`client ${remoteAddr.hostname}:${remoteAddr.port} closed the connection`));
        };
        req.signal.addEventListener("abort", onAbort, { once: true });
        let response: Response;
        try {
          response = await cutter.race(options.handler(detached(req, cutter.signal(disconnected.signal)), info));
        } catch {
          if (cutter.cut) return cutter.cutResponse();
          // The handler owns error reporting; here we only keep the connection honest.
          response = new Response("internal error\n", { status: 500, headers: { "content-type": "text/plain; charset=utf-8" } });
        } finally {
          answered = true;
          req.signal.removeEventListener("abort", onAbort);
        }
        // While shutting down, Deno adds "connection: close" to every response itself.
        return cutter.track(response);
      },
    );
  } catch (err) {
    throw new RemoraError("ERR_LISTEN", `cannot listen on ${options.listen}: ${listenFailure(err)}`, { cause: err });
  }

  let closed: Promise<void> | undefined;
  return {
    address: formatHostPort(host, server.addr.port),
    port: server.addr.port,
    reloadTls() {},
    close(graceMs = DEFAULT_GRACE_MS) {
      closed ??= new Promise<void>((resolve) => {
        // shutdown() refuses new connections at once and waits for every running handler
        // and response body, even ones whose client has gone. Aborting a server after
        // shutdown() began throws inside Deno, so the grace period ends by cutting what
        // still runs ourselves (cutter.ts), which lets shutdown() finish.
        const deadline = setTimeout(() => cutter.cutAll(), graceMs);
        server.shutdown().catch(() => {}).finally(() => {
          clearTimeout(deadline);
          resolve();
        });
      });
      return closed;
    },
  };
}

function overLimit(req: Request, limits: ListenerLimits): LimitReason | undefined {
  let count = 0;
  let bytes = req.method.length + req.url.length + 12;
  for (const [name, value] of req.headers) {
    count++;
    bytes += name.length + value.length + 4;
  }
  if (count > limits.maxRequestHeaders) return "header_count";
  if (bytes > limits.maxRequestHeaderBytes) return "header_size";
  if (Number(req.headers.get("content-length") ?? 0) > limits.maxRequestBodyBytes) return "body_size";
  return undefined;
}

/**
 * Deno's Request reads url, method and headers lazily from the connection, and throws
 * "Request closed" once the response is sent; handlers read them later (access logs), so
 * they get a Request that owns its fields. The body is the original's stream.
 */
function detached(req: Request, signal: AbortSignal): Request {
  const hasBody = req.body !== null;
  return new Request(req.url, {
    method: req.method,
    headers: req.headers,
    signal,
    ...(hasBody ? { body: req.body, duplex: "half" } : {}),
  } as RequestInit);
}
