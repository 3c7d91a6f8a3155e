// The outbound side: sends one attempt to one endpoint over plain HTTP/1.1, TLS or mTLS,
// pooling verified keep-alive connections per (mode, endpoint address, expected identity).

import http from "node:http";
import tls from "node:tls";
import type { Endpoint } from "../../core/endpoint.ts";
import { cancelsOnSignal, UpstreamError, type OriginationMode, type UpstreamOptions } from "../../core/upstream.ts";
import type { MeshUpstream, TlsMaterial, UpstreamFactoryOptions } from "../types.ts";
import { parseHostPort } from "./address.ts";
import { connectionFacts, openConnection, type ConnectTarget } from "./connect.ts";
import { outgoingHeaders, toWebResponse } from "./outgoing.ts";
import { abortError, exchangeError } from "./upstream-errors.ts";
import { createH2Upstream, wantsH2, type H2Upstream } from "./h2-upstream.ts";

export interface NodeUpstreamOptions extends UpstreamFactoryOptions {
  /** TCP connect plus TLS handshake plus peer verification, per new connection (Istio's connectTimeout default: 10 s). */
  connectTimeoutMs?: number;
}

/**
 * Idle pooled connections close after 4 s: below the 5 s keep-alive timeout Node servers
 * use by default (our own listeners keep 65 s), so the client normally closes first.
 */
const DEFAULT_IDLE_TIMEOUT_MS = 4_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Agents of endpoints that went away are swept when the map grows past this. */
const AGENT_SWEEP_THRESHOLD = 64;
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** A pooled connection failed before any response byte: likely closed by the server while idle. */
class StaleConnection extends Error {}

export function createUpstream(options: NodeUpstreamOptions): MeshUpstream {
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const agents = new Map<string, http.Agent>();
  let material: TlsMaterial | undefined;
  let contexts: { MUTUAL: tls.SecureContext; SIMPLE: tls.SecureContext } | undefined;

  // material() is consulted on every send, so a rotated SVID is used by the next new
  // connection even if nobody called reloadTls(); comparing the strings is cheap.
  function secureContextFor(mode: "MUTUAL" | "SIMPLE"): tls.SecureContext {
    const next = options.material();
    if (!contexts || !material || next.certPem !== material.certPem || next.keyPem !== material.keyPem || next.bundlePem !== material.bundlePem) {
      if (contexts) retireAgents();
      material = next;
      contexts = {
        MUTUAL: tls.createSecureContext({ cert: next.certPem, key: next.keyPem, ca: next.bundlePem, minVersion: "TLSv1.2" }),
        SIMPLE: tls.createSecureContext({ ca: next.bundlePem, minVersion: "TLSv1.2" }),
      };
    }
    return contexts[mode];
  }

  function targetFor(mode: OriginationMode, endpoint: Endpoint): ConnectTarget {
    const secureContext = mode === "DISABLE" ? undefined : secureContextFor(mode);
    return { mode, endpoint, verifyPeer: options.verifyPeer, connectTimeoutMs, ...(secureContext ? { secureContext } : {}) };
  }

  // A pool per identity too, so a connection verified for one SPIFFE ID is never reused
  // for a request that expects another at the same address.
  function agentFor(target: ConnectTarget): http.Agent {
    const key = `${target.mode} ${target.endpoint.address} ${target.endpoint.identity ?? ""}`;
    let agent = agents.get(key);
    if (agent) return agent;
    if (agents.size >= AGENT_SWEEP_THRESHOLD) sweepIdleAgents();
    agent = new http.Agent({ keepAlive: true, timeout: idleTimeoutMs, scheduling: "lifo" });
    agent.createConnection = (_options, done) => {
      openConnection(target, done!);
      return undefined;
    };
    agents.set(key, agent);
    return agent;
  }

  function sweepIdleAgents(): void {
    for (const [key, agent] of agents) {
      if (Object.keys(agent.sockets).length === 0 && Object.keys(agent.freeSockets).length === 0 && Object.keys(agent.requests).length === 0) {
        agents.delete(key);
      }
    }
  }

  // In-flight requests finish on their connection; idle ones close now, busy ones when done.
  function retireAgents(): void {
    for (const agent of agents.values()) {
      agent.keepSocketAlive = () => false;
      for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    }
    agents.clear();
  }

  // Requests that arrived over HTTP/2 leave over HTTP/2 (h2-upstream.ts); the rest take HTTP/1.1 as always.
  let h2: H2Upstream | undefined;
  const h2Upstream = () => (h2 ??= createH2Upstream({ material: options.material, verifyPeer: options.verifyPeer, idleTimeoutMs, connectTimeoutMs }));

  async function send(req: Request, endpoint: Endpoint, opts: UpstreamOptions): Promise<Response> {
    if (wantsH2(req)) return h2Upstream().send(req, endpoint, opts);
    if (opts.signal.aborted) throw abortError(opts.signal, endpoint.address);
    const target = targetFor(opts.tls, endpoint);
    try {
      return await exchange(req, target, { agent: agentFor(target) }, opts);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      // Keep-alive race: the server closed the pooled connection while our request was on
      // its way. undici and Envoy retry such a request once on a fresh connection; we do
      // the same, but only for requests that can be replayed (idempotent method, no body)
      // and only this once. Everything else surfaces as "reset" for retry_policy to judge,
      // and the 4 s idle timeout keeps the race rare.
      return await exchange(req, target, { createConnection: (_o, done) => { openConnection(target, done); return undefined; } }, opts);
    }
  }

  return {
    // Every wait in an exchange (the socket, the response head) settles when the signal
    // fires, and a streaming body then fails with its reason (onAbort below).
    send: cancelsOnSignal(send),
    reloadTls() {
      retireAgents();
      h2?.reloadTls();
      contexts = undefined;
      material = undefined;
    },
    close() {
      for (const agent of agents.values()) agent.destroy();
      agents.clear();
      h2?.close();
    },
  };
}

type Via = Pick<http.RequestOptions, "agent" | "createConnection">;

function exchange(req: Request, target: ConnectTarget, via: Via, opts: UpstreamOptions): Promise<Response> {
  const { signal, onConnection } = opts;
  const address = target.endpoint.address;
  const { host, port } = parseHostPort(address, "endpoint address");
  const url = new URL(req.url);
  const replayable = via.agent !== undefined && req.body === null && IDEMPOTENT.has(req.method);
  // The replay after a stale connection starts here too: an abort that came in between has
  // already fired, and a listener added now would never hear it.
  if (signal.aborted) return Promise.reject(abortError(signal, address));

  return new Promise<Response>((resolve, reject) => {
    let response: http.IncomingMessage | undefined;
    let settled = false;
    let reused = false;
    const settle = (err: unknown, value?: Response) => {
      if (settled) return;
      settled = true;
      if (err !== undefined) {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      } else resolve(value!);
    };

    const outgoing = http.request({
      host,
      port,
      method: req.method,
      path: url.pathname + url.search,
      headers: outgoingHeaders(req.headers, url.host, req.body !== null),
      setHost: false,
      ...via,
    });
    // Deno's ClientRequest silently resends any request, POST included, whose reused
    // socket failed before a response (canRetryRequest in its node:http); a flag it sets
    // on its own retry turns that off. send() replays only what is safe to replay.
    (outgoing as { _retrying?: boolean })._retrying = true;

    function onAbort(): void {
      if (response) {
        // The body is still streaming: fail it with the abort reason.
        const reason: unknown = signal.reason;
        response.destroy(reason instanceof Error ? reason : new Error(String(reason)));
        return;
      }
      settle(abortError(signal, address));
      outgoing.destroy();
    }
    signal.addEventListener("abort", onAbort, { once: true });

    outgoing.on("socket", (socket) => {
      reused = outgoing.reusedSocket;
      const facts = connectionFacts.get(socket) ?? {};
      onConnection?.({
        reused,
        peerIdentity: facts.peerIdentity,
        peerSerial: facts.peerSerial,
        handshakeMs: reused ? undefined : facts.handshakeMs,
      });
    });

    outgoing.on("error", (err) => {
      if (response || settled) return; // a body error reaches the stream instead
      if (err instanceof UpstreamError) settle(err); // from openConnection: connect-failure or tls
      else if (reused && replayable) settle(new StaleConnection(err.message, { cause: err }));
      else settle(exchangeError(err, address));
    });

    outgoing.on("response", (res) => {
      response = res;
      res.once("close", () => signal.removeEventListener("abort", onAbort));
      try {
        settle(undefined, toWebResponse(res, req.method));
      } catch (err) {
        res.destroy();
        settle(exchangeError(err, address));
      }
    });

    if (req.body === null) outgoing.end();
    else {
      // A failing request body (the downstream client went away) is not the upstream's
      // fault: it propagates as it is, never as an UpstreamError.
      pumpBody(req.body, outgoing).catch((err: unknown) => {
        settle(err ?? new Error("the request body failed"));
        outgoing.destroy();
      });
    }
  });
}

/** Streams the request body with backpressure; rejects only when the body source fails. */
async function pumpBody(body: ReadableStream<Uint8Array>, outgoing: http.ClientRequest): Promise<void> {
  const reader = body.getReader();
  // The upstream went away: stop pulling from the downstream client.
  outgoing.once("close", () => { reader.cancel().catch(() => {}); });
  for (;;) {
    const { done, value } = await reader.read();
    if (outgoing.destroyed) return;
    if (done) {
      outgoing.end();
      return;
    }
    if (!outgoing.write(value) && !(await drained(outgoing))) return;
  }
}

/** Resolves true on 'drain', false if the request closed first. */
function drained(outgoing: http.ClientRequest): Promise<boolean> {
  return new Promise((resolve) => {
    const finish = (ok: boolean) => {
      outgoing.off("drain", onDrain);
      outgoing.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => finish(true);
    const onClose = () => finish(false);
    outgoing.once("drain", onDrain);
    outgoing.once("close", onClose);
  });
}
