// The Bun upstream: one attempt to one endpoint over plain HTTP/1.1, TLS or mTLS on
// Bun.connect, pooling verified keep-alive connections per (mode, endpoint address,
// expected identity). Bun's fetch cannot be used: with a checkServerIdentity hook (the only
// way to see the peer certificate) it opens a new connection for every request.

import type { Endpoint } from "../../core/endpoint.ts";
import { cancelsOnSignal, UpstreamError, type OriginationMode, type UpstreamOptions } from "../../core/upstream.ts";
import type { MeshUpstream, TlsMaterial, UpstreamFactoryOptions } from "../types.ts";
import { abortError, exchangeError } from "../node/upstream-errors.ts";
import { openConnection, type OpenedConnection } from "./open.ts";
import { RequestBodyFailed, requestHead, writeBody } from "./http1-request.ts";
import { BufferedReader, MalformedResponse, bodyStream, readHead, toResponse } from "./http1-response.ts";
import { createPool, type Pooled } from "./pool.ts";
import { rememberBytes } from "./known-body.ts";
import { lazy } from "../lazy.ts";
import type { H2Upstream } from "../node/h2-upstream.ts";
import { wantsH2 } from "../../core/protocol/proto-header.ts";

export interface BunUpstreamOptions extends UpstreamFactoryOptions {
  /** TCP connect plus TLS handshake plus peer verification, per new connection (Istio's connectTimeout default: 10 s). */
  connectTimeoutMs?: number;
}

/** Below the 5 s keep-alive timeout Node servers use by default, so the client closes first. */
const DEFAULT_IDLE_TIMEOUT_MS = 4_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** A body up to this size that is already buffered with its head is passed on as bytes rather than a stream. */
const WHOLE_BODY_MAX = 64 * 1024;
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const NO_MATERIAL: TlsMaterial = { certPem: "", keyPem: "", bundlePem: "" };
// TLS alerts a server sends when it rejects our certificate (RFC 8446 §6.2), as BoringSSL names them.
const CERTIFICATE_ALERT = /ALERT_(BAD_CERTIFICATE|UNSUPPORTED_CERTIFICATE|CERTIFICATE_\w+|UNKNOWN_CA|ACCESS_DENIED|DECRYPT_ERROR)/;

/** Pool keys per endpoint object and mode, made once: a template per request made two strings (issue 8). */
const poolKeys = new WeakMap<Endpoint, Partial<Record<OriginationMode, { address: string; identity: string | undefined; key: string }>>>();

function poolKey(mode: OriginationMode, endpoint: Endpoint): string {
  let keys = poolKeys.get(endpoint);
  if (keys === undefined) poolKeys.set(endpoint, (keys = {}));
  const made = keys[mode];
  // Endpoints are plain objects: one changed in place gets a key for what it says now.
  if (made !== undefined && made.address === endpoint.address && made.identity === endpoint.identity) return made.key;
  const key = `${mode} ${endpoint.address} ${endpoint.identity ?? ""}`;
  keys[mode] = { address: endpoint.address, identity: endpoint.identity, key };
  return key;
}

/** A pooled connection failed before any response byte: likely closed by the server while idle. */
class StaleConnection extends Error {}

export function createUpstream(options: BunUpstreamOptions): MeshUpstream {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const pool = createPool(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  let material: TlsMaterial | undefined;

  // material() is consulted on every TLS send, so a rotated SVID is used by the next new
  // connection even if nobody called reloadTls(); comparing the strings is cheap.
  function materialFor(mode: OriginationMode): TlsMaterial {
    if (mode === "DISABLE") return NO_MATERIAL;
    const next = options.material();
    if (material && (next.certPem !== material.certPem || next.keyPem !== material.keyPem || next.bundlePem !== material.bundlePem)) pool.retire();
    material = next;
    return next;
  }

  async function connect(mode: OriginationMode, endpoint: Endpoint, key: string, signal: AbortSignal): Promise<Pooled> {
    const opened: OpenedConnection = await openConnection({
      mode,
      endpoint,
      material: materialFor(mode),
      verifyPeer: options.verifyPeer,
      connectTimeoutMs,
      signal,
      aborted: () => abortError(signal, endpoint.address),
    });
    return pool.adopt(key, opened);
  }

  // Requests that arrived over HTTP/2 leave over HTTP/2 on Bun's node:http2 (docs/runtimes.md),
  // loaded by the first of them: a sidecar that never sees one never holds node:http2.
  const h2 = lazy(async (): Promise<H2Upstream> => (await import("../node/h2-upstream.ts")).createH2Upstream({
    material: options.material,
    verifyPeer: options.verifyPeer,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
    connectTimeoutMs,
  }));

  async function send(req: Request, endpoint: Endpoint, opts: UpstreamOptions): Promise<Response> {
    if (wantsH2(req)) return (await h2.get()).send(req, endpoint, opts);
    if (opts.signal.aborted) throw abortError(opts.signal, endpoint.address);
    // A pool per identity too, so a connection verified for one SPIFFE ID is never reused
    // for a request that expects another at the same address.
    const key = poolKey(opts.tls, endpoint);
    if (opts.tls !== "DISABLE") materialFor(opts.tls); // retire connections made with old material
    const pooled = pool.take(key);
    if (!pooled) return exchange(req, await connect(opts.tls, endpoint, key, opts.signal), false, opts, endpoint.address);
    try {
      return await exchange(req, pooled, true, opts, endpoint.address);
    } catch (err) {
      if (!(err instanceof StaleConnection)) throw err;
      // Keep-alive race: the server closed the pooled connection while our request was on
      // its way. Like undici and Envoy, a request that can be replayed (idempotent method, no
      // body) is sent once more on a fresh connection; everything else surfaces as "reset".
      return exchange(req, await connect(opts.tls, endpoint, key, opts.signal), false, opts, endpoint.address);
    }
  }

  return {
    // Every wait in send (connect, the request head, the response head) ends when the
    // signal fires; a streaming body then fails with its reason (bodyStream).
    send: cancelsOnSignal(send),
    reloadTls() {
      pool.retire();
      h2.loaded?.reloadTls();
      material = undefined;
    },
    close() {
      pool.close();
      h2.loaded?.close();
    },
  };
}

async function exchange(req: Request, conn: Pooled, reused: boolean, opts: UpstreamOptions, address: string): Promise<Response> {
  const { signal } = opts;
  const socket = conn.opened.socket;
  const replayable = reused && req.body === null && IDEMPOTENT.has(req.method);
  // Until the response head arrives an abort cuts the connection, which fails the read below.
  const onAbort = () => conn.destroy();
  signal.addEventListener("abort", onAbort, { once: true });
  opts.onConnection?.({
    reused,
    peerIdentity: conn.opened.peerIdentity,
    peerSerial: conn.opened.peerSerial,
    handshakeMs: reused ? undefined : conn.opened.handshakeMs,
  });

  if (signal.aborted) {
    signal.removeEventListener("abort", onAbort);
    conn.destroy();
    throw abortError(signal, address);
  }
  const reader = new BufferedReader(socket);
  let bodyFailure: unknown;
  let bodySent: Promise<void> | undefined;
  try {
    const { head, chunked, length } = requestHead(req);
    await socket.write(head);
    if (req.body !== null) {
      bodySent = writeBody(req.body, socket, chunked, length);
      // A failing request body (the downstream client went away) is not the upstream's
      // fault: it propagates as it is, never as an UpstreamError.
      bodySent.catch((err: unknown) => {
        if (err instanceof RequestBodyFailed) bodyFailure = err.cause ?? err;
        conn.destroy();
      });
    }
    const answer = await readHead(reader, req.method);
    if (answer.status > 599) throw new MalformedResponse(`status ${answer.status} cannot be relayed`);
    signal.removeEventListener("abort", onAbort);
    const f = answer.framing;
    if (f.kind === "length" && f.length > 0 && f.length <= WHOLE_BODY_MAX && reader.buffered >= f.length) {
      // The whole body came with the head (the common small answer): hand it over as
      // bytes, with no stream to build and pull, and free the connection at once. A view,
      // not a copy: Bun's Response copies what it is given, and every chunk Bun passes to
      // data() has an ArrayBuffer of its own (the socket queue relies on that too).
      const bytes = reader.take(f.length);
      // Built before the connection is released: a field the Response refuses makes the answer malformed.
      const res = rememberBytes(toResponse(answer, bytes as Uint8Array<ArrayBuffer>), bytes);
      releaseAfter(bodySent, conn, answer.keepAlive && reader.leftover === 0);
      return res;
    }
    const body = bodyStream(reader, answer, signal, (reusable) => releaseAfter(bodySent, conn, reusable));
    try {
      return toResponse(answer, body);
    } catch (err) {
      // The stream is never read, so it would never hand the connection back.
      await body?.cancel().catch(() => {});
      throw err;
    }
  } catch (err) {
    signal.removeEventListener("abort", onAbort);
    conn.destroy();
    if (bodyFailure !== undefined) throw bodyFailure;
    if (err instanceof RequestBodyFailed) throw err.cause ?? err;
    if (signal.aborted) throw abortError(signal, address);
    if (replayable && !reader.sawBytes) throw new StaleConnection((err as Error)?.message ?? "stale connection", { cause: err });
    const alert = CERTIFICATE_ALERT.exec((err as Error)?.message ?? "");
    if (alert) throw new UpstreamError("tls", address, `upstream ${address} rejected this sidecar's certificate (${alert[0]})`, { cause: err });
    throw exchangeError(err, address);
  }
}

/** Reusable only once the request body is fully sent too (a server may answer early). */
function releaseAfter(bodySent: Promise<void> | undefined, conn: Pooled, reusable: boolean): void {
  if (bodySent === undefined) conn.release(reusable);
  else bodySent.then(() => conn.release(reusable), () => conn.destroy());
}
