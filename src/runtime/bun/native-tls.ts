// The mTLS side of the native Bun listener: Bun.listen's TLS options, the verdict on each
// connection's caller (chain check by BoringSSL, SPIFFE ID by the injected verifier) and
// the refusal sentences and labels the node adapter gives (src/runtime/node/tls-acceptor.ts).

import type { ServeOptions, TlsRefusal } from "../types.ts";
import { formatHostPort } from "../node/address.ts";
import type { SocketOwner } from "./native-duplex.ts";
import type { ListenSocket, ListenTlsOptions } from "./native-listen.ts";
import { describeVerifyCode, verifyCodeKind } from "../verify-codes.ts";

type TlsOptions = NonNullable<ServeOptions["tls"]>;

/** Bytes a caller may send before its verdict is in; past this the socket is paused. */
const EARLY_BYTES_HIGH_WATER = 256 * 1024;

/** "h2" before "http/1.1": RFC 7301 lets the server prefer; wire format, as Bun.listen wants it. */
const ALPN_H2_HTTP1 = "\x02h2\x08http/1.1";

export function listenTlsOptions(options: TlsOptions, h2: boolean): ListenTlsOptions {
  const material = options.material();
  return {
    cert: material.certPem,
    key: material.keyPem,
    ca: material.bundlePem,
    requestCert: true,
    // With "require", BoringSSL drops a client without a certificate (with a
    // certificate_required alert) or with one outside the bundle; the handshake callback
    // still reports why. With "request" the handshake completes and the verdict refuses.
    rejectUnauthorized: options.clientCert !== "request",
    // Without h2 no ALPN is offered at all, as on the node adapter: clients speak HTTP/1.1.
    ...(h2 ? { ALPNProtocols: ALPN_H2_HTTP1 } : {}),
  };
}

export class Refusal extends Error {
  readonly kind: TlsRefusal;
  constructor(message: string, kind: TlsRefusal) {
    super(message);
    this.kind = kind;
  }
}

/**
 * The caller's verified SPIFFE ID, `undefined` for a caller without a certificate under
 * clientCert "request", or a Refusal. Bun shows only the leaf; the verifier anchors it in
 * the bundle (docs/runtimes.md, as on the Bun upstream).
 */
export async function verdictOf(
  socket: ListenSocket<SocketOwner>,
  authorizationError: (Error & { code?: string }) | null,
  options: TlsOptions,
): Promise<string | undefined> {
  const raw = socket.getPeerCertificate?.()?.raw;
  if (!raw || raw.byteLength === 0) {
    if (options.clientCert === "request") return undefined;
    throw new Refusal("the client presented no certificate", "no-certificate");
  }
  if (authorizationError) {
    const code = authorizationError.code;
    throw new Refusal(describeVerifyCode(code) ?? `the client certificate was not verified (${code ?? authorizationError.message})`, refusalKind(code));
  }
  try {
    return await options.verifyPeer([new Uint8Array(raw)]);
  } catch (err) {
    throw new Refusal(err instanceof Error ? err.message : String(err), "identity");
  }
}

/**
 * Why a handshake failed, from Bun's error: code EPROTO with BoringSSL's reason at the end
 * of the message ("error:1000009c:SSL routines:OPENSSL_internal:HTTP_REQUEST").
 */
export function handshakeRefusal(err: (Error & { code?: string }) | null): Refusal {
  const code = err?.code ?? "";
  const reason = /:([A-Z0-9_]+)$/.exec(err?.message ?? "")?.[1] ?? code;
  const verified = describeVerifyCode(code);
  if (verified) return new Refusal(verified, refusalKind(code));
  if (reason === "PEER_DID_NOT_RETURN_A_CERTIFICATE") return new Refusal("the client presented no certificate", "no-certificate");
  if (code === "ECONNRESET") return new Refusal("the client closed the connection during the TLS handshake", "handshake");
  // BoringSSL's names for a peer that speaks HTTP (or anything not TLS) to a TLS port.
  if (/HTTP_REQUEST|HTTPS_PROXY_REQUEST|WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(reason)) {
    return new Refusal("the client sent plaintext to an mTLS port", "plaintext");
  }
  // TLS 1.0/1.1 (BoringSSL's minimum here is TLS 1.2) and cipher suites outside its set.
  if (/UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|NO_SHARED_CIPHER|NO_CIPHERS|NO_SUITABLE|INAPPROPRIATE_FALLBACK/.test(reason)) {
    return new Refusal(`the client offered an old TLS version or only weak cipher suites (${reason})`, "protocol");
  }
  return new Refusal(`the TLS handshake failed (${reason || err?.message || "no reason given"})`, "handshake");
}

/** The metric label for an X509_V_ERR_* name; a refusal without one counts as untrusted. */
function refusalKind(code: string | undefined): TlsRefusal {
  return verifyCodeKind(code ?? "");
}

/**
 * Owns a TLS connection from accept until its verdict: what the caller sends meanwhile is
 * kept (no request is handled before the verdict), and replayed to the next owner.
 */
export class AwaitingVerdict implements SocketOwner {
  readonly since: number;
  /** "host:port" of the caller, for refusal sentences. */
  readonly remote: string;
  private readonly socket: ListenSocket<SocketOwner>;
  private early: Uint8Array[] = [];
  private earlyBytes = 0;
  private ended = false;
  closed = false;
  /** Judged (or closed by the listener itself): a handshake callback after this reports nothing. */
  settled = false;

  constructor(socket: ListenSocket<SocketOwner>, now: number) {
    this.socket = socket;
    this.since = now;
    this.remote = formatHostPort(socket.remoteAddress ?? "", socket.remotePort ?? 0);
    socket.data = this;
  }

  /** Closed by the listener (drain, stalled handshake): Bun then fails the handshake, which is no refusal of ours. */
  terminate(): void {
    this.settled = true;
    if (!this.closed) this.socket.terminate();
  }

  onData(chunk: Uint8Array): void {
    this.early.push(chunk);
    this.earlyBytes += chunk.byteLength;
    if (this.earlyBytes > EARLY_BYTES_HIGH_WATER) this.socket.pause();
  }

  onDrain(): void {}

  onEnd(): void {
    this.ended = true;
  }

  onClose(): void {
    this.closed = true;
  }

  /** Gives what arrived so far to `next`, which owns the socket from now on. */
  handOver(next: SocketOwner): void {
    const early = this.early;
    this.early = [];
    if (this.earlyBytes > EARLY_BYTES_HIGH_WATER) this.socket.resume();
    for (const chunk of early) next.onData(chunk);
    if (this.ended) next.onEnd();
  }
}
