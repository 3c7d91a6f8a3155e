// The HTTP/2 upstream: requests marked `remora-proto: h2` go out as streams on ONE
// multiplexed session per (mode, endpoint address, expected identity): h2 over mTLS (ALPN
// "h2") to a peer sidecar, h2c to the local app. A burst of app requests is a burst of
// streams, not of TLS handshakes (Linkerd's transport between proxies).

import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Endpoint } from "../../core/endpoint.ts";
import { attachTrailers } from "../../core/trailers.ts";
import { UpstreamError, type OriginationMode, type UpstreamOptions } from "../../core/upstream.ts";
import type { PeerVerifier, TlsMaterial } from "../types.ts";
import { parseHostPort } from "./address.ts";
import type { ConnectionFacts } from "./connect.ts";
import { hopByHopNames } from "./hop-by-hop.ts";
import { readPeerChain } from "./peer-chain.ts";
import { abortError, connectError, identityError } from "./upstream-errors.ts";
import { PROTO_HEADER } from "../../core/protocol/proto-header.ts";
import { h2Body } from "./h2-body.ts";
import { untilAborted } from "../../core/retry/signals.ts";

export interface H2UpstreamOptions {
  material: () => TlsMaterial;
  verifyPeer: PeerVerifier;
  /** A session with no stream open is closed after this long. */
  idleTimeoutMs: number;
  /** TCP connect plus TLS handshake plus peer verification. */
  connectTimeoutMs: number;
}

export interface H2Upstream {
  send(req: Request, endpoint: Endpoint, opts: UpstreamOptions): Promise<Response>;
  /** New streams go to new sessions (new certificate); streams in flight finish on the old ones. */
  reloadTls(): void;
  close(): void;
  /** Sessions open now, for tests and the admin view. */
  sessions(): number;
}

export { wantsH2 } from "../../core/protocol/proto-header.ts";

const WINDOW_BYTES = 1 << 20;
const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM, NGHTTP2_FLAG_END_STREAM } = http2.constants;
// RFC 9113 §8.2.2: connection-specific fields must not appear in HTTP/2; host becomes :authority.
const NOT_FORWARDED = new Set(["host", PROTO_HEADER, "http2-settings"]);

interface Session {
  session: http2.ClientHttp2Session;
  facts: ConnectionFacts;
  open: number;
  idle?: ReturnType<typeof setTimeout>;
  /** The peer sent GOAWAY: its streams that fail now failed because the connection is going away. */
  goaway?: boolean;
  /** Its entry in the pool, so a session closing for idleness leaves the pool at once. */
  pending?: Promise<Session>;
}

export function createH2Upstream(options: H2UpstreamOptions): H2Upstream {
  const pool = new Map<string, Promise<Session>>();
  const live = new Set<Session>();
  let material: TlsMaterial | undefined;
  let contexts: { MUTUAL: tls.SecureContext; SIMPLE: tls.SecureContext } | undefined;

  // As in upstream.ts: material() is read per send, so a rotated SVID reaches the next session.
  function secureContextFor(mode: "MUTUAL" | "SIMPLE"): tls.SecureContext {
    const next = options.material();
    if (!contexts || !material || next.certPem !== material.certPem || next.keyPem !== material.keyPem || next.bundlePem !== material.bundlePem) {
      if (contexts) retire();
      material = next;
      contexts = {
        MUTUAL: tls.createSecureContext({ cert: next.certPem, key: next.keyPem, ca: next.bundlePem, minVersion: "TLSv1.2" }),
        SIMPLE: tls.createSecureContext({ ca: next.bundlePem, minVersion: "TLSv1.2" }),
      };
    }
    return contexts[mode];
  }

  /** Sessions in the pool take no new streams; each closes (GOAWAY) once its streams are done. */
  function retire(): void {
    pool.clear();
    for (const s of live) s.session.close();
  }

  function sessionFor(mode: OriginationMode, endpoint: Endpoint): { pending: Promise<Session>; fresh: boolean } {
    const secureContext = mode === "DISABLE" ? undefined : secureContextFor(mode);
    // Keyed by identity too: a session verified for one SPIFFE ID never carries a request expecting another.
    const key = `${mode} ${endpoint.address} ${endpoint.identity ?? ""}`;
    const existing = pool.get(key);
    if (existing) return { pending: existing, fresh: false };
    // Shared by every request that arrives while it connects, so it is bounded by the
    // connect timeout only, never by one request's signal.
    const pending: Promise<Session> = openSession(mode, endpoint, secureContext).then((s) => {
      s.pending = pending;
      live.add(s);
      // GOAWAY or a broken connection: the next request opens a new session.
      s.session.once("goaway", () => {
        s.goaway = true;
        forget(pending);
      });
      s.session.once("close", () => {
        live.delete(s);
        clearTimeout(s.idle);
        forget(pending);
      });
      s.session.on("error", () => forget(pending));
      armIdle(s);
      return s;
    });
    pool.set(key, pending);
    pending.catch(() => forget(pending));
    return { pending, fresh: true };
  }

  function forget(pending: Promise<Session> | undefined): void {
    for (const [key, value] of pool) if (value === pending) pool.delete(key);
  }

  function armIdle(s: Session): void {
    clearTimeout(s.idle);
    if (s.open > 0) return;
    s.idle = setTimeout(() => {
      forget(s.pending);
      s.session.close();
    }, options.idleTimeoutMs);
    s.idle.unref?.();
  }

  function openSession(mode: OriginationMode, endpoint: Endpoint, secureContext: tls.SecureContext | undefined): Promise<Session> {
    const address = endpoint.address;
    const { host, port } = parseHostPort(address, "endpoint address");
    const started = performance.now();
    return new Promise<Session>((resolve, reject) => {
      let settled = false;
      let tcpReadyAt: number | undefined;
      const socket: net.Socket = mode === "DISABLE"
        ? net.connect({ host, port, noDelay: true })
        : tls.connect({
          host,
          port,
          secureContext,
          ALPNProtocols: ["h2"],
          // SVIDs name a SPIFFE ID, not a DNS name: the verifier checks it below (connect.ts).
          rejectUnauthorized: true,
          checkServerIdentity: () => undefined,
          ...(net.isIP(host) === 0 ? { servername: host } : {}),
        });
      socket.setNoDelay(true);
      const fail = (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new UpstreamError("connect-failure", address,
        `cannot connect to upstream ${address}: no connection within ${options.connectTimeoutMs} ms`)), options.connectTimeoutMs);
      socket.on("error", (err) => fail(connectError(err, address)));
      socket.once("close", () => fail(connectError(Object.assign(new Error("closed"), { code: "ECONNRESET" }), address)));
      socket.once("connect", () => { tcpReadyAt = performance.now(); });
      socket.once(mode === "DISABLE" ? "connect" : "secureConnect", () => void ready());

      async function ready(): Promise<void> {
        const facts: ConnectionFacts = {};
        if (mode !== "DISABLE") {
          const secure = socket as tls.TLSSocket;
          facts.handshakeMs = performance.now() - (tcpReadyAt ?? started);
          const chain = readPeerChain(secure);
          facts.peerSerial = chain.serial;
          try {
            facts.peerIdentity = await options.verifyPeer(chain.chainDer, endpoint.identity);
          } catch (err) {
            return fail(identityError(err, address, chain.uris, endpoint.identity));
          }
          if (secure.alpnProtocol !== "h2") {
            return fail(new UpstreamError("connect-failure", address,
              `upstream ${address} does not offer HTTP/2 (ALPN h2) on its mTLS port, so the h2 request cannot be sent; enable h2 on its inbound listener`));
          }
        }
        if (settled) return;
        const session = http2.connect(`${mode === "DISABLE" ? "http" : "https"}://${address}`, {
          createConnection: () => socket,
          settings: { initialWindowSize: WINDOW_BYTES, enablePush: false },
        });
        session.on("error", () => {});
        session.setLocalWindowSize?.(WINDOW_BYTES);
        // The session owns the socket now; its own errors end up on each stream.
        socket.removeAllListeners("error");
        socket.removeAllListeners("close");
        socket.on("error", () => {});
        settled = true;
        clearTimeout(timer);
        resolve({ session, facts, open: 0 });
      }
    });
  }

  async function send(req: Request, endpoint: Endpoint, opts: UpstreamOptions): Promise<Response> {
    const { signal } = opts;
    const address = endpoint.address;
    if (signal.aborted) throw abortError(signal, address);
    const { pending, fresh } = sessionFor(opts.tls, endpoint);
    const s = await untilAborted(pending, signal).catch((err: unknown) => {
      throw signal.aborted ? abortError(signal, address) : err;
    });
    if (s.session.closed || s.session.destroyed) {
      // Closing (idle, GOAWAY) or lost between the pool lookup and now: the request was
      // never sent, so a new session is safe.
      forget(pending);
      return send(req, endpoint, opts);
    }
    opts.onConnection?.({
      reused: !fresh,
      ...(s.facts.peerIdentity !== undefined ? { peerIdentity: s.facts.peerIdentity } : {}),
      ...(s.facts.peerSerial !== undefined ? { peerSerial: s.facts.peerSerial } : {}),
      ...(fresh && s.facts.handshakeMs !== undefined ? { handshakeMs: s.facts.handshakeMs } : {}),
    });
    return exchange(req, s, address, signal, () => armIdle(s));
  }

  return {
    send,
    reloadTls() {
      retire();
      contexts = undefined;
      material = undefined;
    },
    close() {
      pool.clear();
      for (const s of live) s.session.destroy();
      live.clear();
    },
    sessions: () => live.size,
  };
}

function exchange(req: Request, s: Session, address: string, signal: AbortSignal, onDone: () => void): Promise<Response> {
  const url = new URL(req.url);
  const headers = requestHeaders(req, url);
  const hasBody = req.body !== null;
  let stream: http2.ClientHttp2Stream;
  try {
    stream = s.session.request(headers, { endStream: !hasBody });
  } catch (err) {
    // The session went away between the check and the request (GOAWAY received): nothing was sent.
    throw new UpstreamError("reset", address, `upstream ${address} closed its HTTP/2 connection before the request was sent (${(err as Error).message})`, { cause: err });
  }
  s.open++;
  clearTimeout(s.idle);
  stream.once("close", () => {
    s.open--;
    onDone();
  });

  return new Promise<Response>((resolve, reject) => {
    let answered = false;
    let settledTrailers: ((h: Headers) => void) | undefined;
    const trailers = new Promise<Headers>((r) => (settledTrailers = r));
    const fail = (err: unknown) => {
      if (answered) return;
      answered = true;
      signal.removeEventListener("abort", onAbort);
      reject(err);
    };
    function onAbort(): void {
      if (!answered) fail(abortError(signal, address));
      // Before the head: the attempt is over. After it: the body stops (RST_STREAM CANCEL).
      if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
    }
    signal.addEventListener("abort", onAbort, { once: true });

    // A GOAWAY is a lost connection ("reset") whatever code each stream is closed with
    // (Bun's client closes the unprocessed ones with REFUSED_STREAM, Node's with an error).
    stream.on("error", (err: NodeJS.ErrnoException) => fail(s.goaway ? goawayError(address, err) : streamError(err, stream, address)));
    stream.once("close", () => {
      settledTrailers?.(new Headers());
      signal.removeEventListener("abort", onAbort);
      if (!answered) fail(s.goaway ? goawayError(address) : closedError(stream, address));
    });
    stream.once("trailers", (fields: http2.IncomingHttpHeaders) => settledTrailers?.(toHeaders(fields)));
    stream.once("response", (fields: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number) => {
      if (answered) return;
      answered = true;
      const status = Number(fields[":status"] ?? 0);
      if (status < 200 || status > 599) {
        stream.close(NGHTTP2_CANCEL);
        return reject(new UpstreamError("reset", address, `upstream ${address} answered status ${status}, which cannot be relayed`));
      }
      // END_STREAM on the head: no body and no trailers (gRPC's trailers-only answer).
      const ended = (flags & NGHTTP2_FLAG_END_STREAM) !== 0;
      const bodyless = ended || req.method === "HEAD" || status === 204 || status === 304;
      if (bodyless) stream.resume();
      const body = bodyless ? null : h2Body(stream, {
        onCancel: () => { if (!stream.destroyed) stream.close(NGHTTP2_CANCEL); },
        // A reset after the head (RST_STREAM, GOAWAY): a truncated body must not pass for a whole one.
        closedEarly: () => new Error(`upstream ${address} reset the stream before its end (HTTP/2 error ${stream.rstCode ?? "none"})`),
      });
      const res = new Response(body, { status, headers: toHeaders(fields) });
      resolve(ended ? res : attachTrailers(res, trailers));
    });

    if (hasBody) {
      // A failing request body (the client went away) is not the upstream's fault: it
      // propagates as it is and the stream is cancelled.
      pumpBody(req.body!, stream).catch((err: unknown) => {
        fail(err ?? new Error("the request body failed"));
        if (!stream.destroyed) stream.close(NGHTTP2_CANCEL);
      });
    }
  });
}

function requestHeaders(req: Request, url: URL): http2.OutgoingHttpHeaders {
  const drop = hopByHopNames(req.headers.get("connection"));
  const out: http2.OutgoingHttpHeaders = {
    ":method": req.method,
    ":scheme": url.protocol === "https:" ? "https" : "http",
    ":authority": url.host,
    ":path": url.pathname + url.search,
  };
  for (const [name, value] of req.headers) {
    if (drop.has(name) || NOT_FORWARDED.has(name)) continue;
    const prior = out[name];
    out[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [String(prior)]), value];
  }
  // "te: trailers" is the one TE value HTTP/2 allows (RFC 9113 §8.2.2); gRPC servers expect
  // it, and every hop strips TE as hop-by-hop, so it is restored for gRPC here.
  if ((req.headers.get("content-type") ?? "").startsWith("application/grpc")) out.te = "trailers";
  return out;
}

function toHeaders(fields: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(fields)) {
    if (name.startsWith(":") || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) out.append(name, v);
  }
  return out;
}

async function pumpBody(body: ReadableStream<Uint8Array>, stream: http2.ClientHttp2Stream): Promise<void> {
  const reader = body.getReader();
  // The upstream stream ended (answered early, reset): stop pulling from the client.
  stream.once("close", () => { reader.cancel().catch(() => {}); });
  for (;;) {
    const { done, value } = await reader.read();
    if (stream.destroyed || stream.closed) return;
    if (done) {
      stream.end();
      return;
    }
    if (!stream.write(value)) await drained(stream);
  }
}

function drained(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const finish = () => {
      stream.off("drain", finish);
      stream.off("close", finish);
      resolve();
    };
    stream.once("drain", finish);
    stream.once("close", finish);
  });
}

/** RFC 9113 §8.7: REFUSED_STREAM guarantees the request was not processed. */
function streamError(err: NodeJS.ErrnoException, stream: http2.ClientHttp2Stream, address: string): UpstreamError {
  if (stream.rstCode === NGHTTP2_REFUSED_STREAM || /REFUSED_STREAM/.test(err.message)) {
    return new UpstreamError("refused-stream", address, `upstream ${address} refused the HTTP/2 stream (REFUSED_STREAM); the request was not processed`, { cause: err });
  }
  return new UpstreamError("reset", address, `upstream ${address} reset the HTTP/2 stream before sending a response (${err.code ?? err.message})`, { cause: err });
}

function goawayError(address: string, cause?: unknown): UpstreamError {
  return new UpstreamError("reset", address, `upstream ${address} closed its HTTP/2 connection (GOAWAY) before sending a response`, { cause });
}

function closedError(stream: http2.ClientHttp2Stream, address: string): UpstreamError {
  const code = stream.rstCode;
  if (code === NGHTTP2_REFUSED_STREAM) {
    return new UpstreamError("refused-stream", address, `upstream ${address} refused the HTTP/2 stream (REFUSED_STREAM); the request was not processed`);
  }
  return new UpstreamError("reset", address, `upstream ${address} closed the HTTP/2 stream before sending a response (error code ${code ?? "none"})`);
}
