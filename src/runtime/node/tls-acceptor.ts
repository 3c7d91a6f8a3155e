// The TLS side of an inbound listener: a node:tls Server that runs the handshake, settles
// each connection's caller identity once, and hands the secure socket to an HTTP server.

import type http from "node:http";
import type net from "node:net";
import tls from "node:tls";
import type { ServeOptions, TlsMaterial, TlsRefusal } from "../types.ts";
import { describeVerifyCode, verifyCodeKind } from "../verify-codes.ts";
import { formatHostPort } from "./address.ts";
import { readPeerChain } from "./peer-chain.ts";

type TlsOptions = NonNullable<ServeOptions["tls"]>;

export interface TlsAcceptor {
  server: tls.Server;
  /**
   * The connection's verdict: the caller's verified SPIFFE ID, `undefined` for a caller
   * that presented no certificate (clientCert "request"), a rejection once refused.
   * Absent for a socket this acceptor never accepted.
   */
  verdictOf(socket: net.Socket): Promise<string | undefined> | undefined;
  reload(): void;
}

/**
 * Why a raw tls.Server rather than https.createServer: Bun 1.4's node:https server hands
 * out sockets without getPeerCertificate() and never emits tlsClientError, while its
 * node:tls server has both. Node, Bun and Deno all accept a secure socket passed to an
 * http.Server through its "connection" event, so one code path serves all three.
 */
export function createTlsAcceptor(
  options: TlsOptions,
  httpServer: http.Server,
  remoteOfRaw: (raw: net.Socket) => string | undefined,
  /** Raw sockets the listener closed itself (connection limit): not refused handshakes. */
  dropped: (raw: net.Socket) => boolean = () => false,
  /**
   * With this, "h2" is offered by ALPN (before "http/1.1", RFC 7301 server preference) and
   * connections that pick it go here instead of to the HTTP/1.1 server (h2-serve.ts h2OverTls).
   */
  h2?: (socket: tls.TLSSocket, verdict: Promise<string | undefined>) => void,
): TlsAcceptor {
  const optional = options.clientCert === "request";
  const refuse = (reason: string, remote: string, kind: TlsRefusal) => options.onRefused?.(reason, remote, kind);
  const verdicts = new WeakMap<net.Socket, Promise<string | undefined>>();

  // With "require", rejectUnauthorized makes the TLS library drop a client without a
  // certificate, or with one outside the bundle, before any HTTP byte is read. With
  // "request" the handshake completes either way and the check below does the refusing.
  const server = tls.createServer({
    ...contextOptions(options.material()),
    requestCert: true,
    rejectUnauthorized: !optional,
    // Without h2 no ALPN is offered at all, exactly as before: clients fall back to HTTP/1.1.
    ...(h2 ? { ALPNProtocols: ["h2", "http/1.1"] } : {}),
  });

  server.on("secureConnection", (socket: tls.TLSSocket) => {
    const remote = remoteOf(socket);
    // Any failure, even a synchronous one, becomes a refusal: the connection fails closed.
    const verdict = Promise.resolve(socket).then(async (s) => {
      const { chainDer } = readPeerChain(s);
      if (chainDer.length === 0 && optional) return undefined;
      if (!s.authorized) {
        const code = errorCodeOf(s.authorizationError);
        throw new Refusal(describeVerifyCode(code) ?? "the client certificate was not verified", refusalKind(code));
      }
      return options.verifyPeer(chainDer).catch((err: unknown) => {
        throw new Refusal(err instanceof Error ? err.message : String(err), "identity");
      });
    });
    verdicts.set(socket, verdict);
    verdict.catch((err: unknown) => {
      socket.destroy();
      const kind = err instanceof Refusal ? err.kind : "handshake";
      refuse(`mTLS client ${remote} refused: ${err instanceof Error ? err.message : String(err)}`, remote, kind);
    });
    if (h2 && socket.alpnProtocol === "h2") h2(socket, verdict);
    else httpServer.emit("connection", socket);
  });

  server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
    const parent = (socket as { _parent?: net.Socket })._parent;
    if (parent && dropped(parent)) return;
    const remote = (parent && remoteOfRaw(parent)) ?? remoteOf(socket);
    const [sentence, kind] = handshakeRefusal(err, socket);
    refuse(`mTLS handshake from ${remote} refused: ${sentence}`, remote, kind);
  });

  return {
    server,
    verdictOf: (socket) => verdicts.get(socket),
    reload: () => server.setSecureContext(contextOptions(options.material())),
  };
}

function contextOptions(material: TlsMaterial) {
  return { cert: material.certPem, key: material.keyPem, ca: material.bundlePem, minVersion: "TLSv1.2" as const };
}

export function remoteOf(socket: net.Socket): string {
  const address = socket.remoteAddress;
  return address ? formatHostPort(address, socket.remotePort ?? 0) : "an unknown address";
}

class Refusal extends Error {
  readonly kind: TlsRefusal;
  constructor(message: string, kind: TlsRefusal) {
    super(message);
    this.kind = kind;
  }
}

function handshakeRefusal(err: NodeJS.ErrnoException, socket: tls.TLSSocket): [string, TlsRefusal] {
  // Node and Deno record the failed chain check on the socket (the error then only says
  // the socket closed); Bun puts the verify code in the error itself.
  const socketCode = errorCodeOf((socket as { authorizationError?: string | Error }).authorizationError);
  const verified = describeVerifyCode(socketCode);
  if (verified) return [verified, refusalKind(socketCode)];
  const fromError = describeVerifyCode(err.code);
  if (fromError) return [fromError, refusalKind(err.code)];
  const code = err.code ?? "";
  if (code === "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE") return ["the client presented no certificate", "no-certificate"];
  if (code === "ECONNRESET") return ["the client closed the connection during the TLS handshake", "handshake"];
  // OpenSSL's names for a peer that speaks HTTP (or anything not TLS) to a TLS port.
  if (/HTTP_REQUEST|WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|RECORD_LAYER_FAILURE/.test(code)) {
    return ["the client sent plaintext to an mTLS port", "plaintext"];
  }
  // TLS 1.0/1.1 (minVersion is TLSv1.2) and cipher suites outside the allowed set.
  // Deno's node:tls (rustls) reports those as a handshake_failure alert.
  if (/UNSUPPORTED_PROTOCOL|VERSION_TOO_LOW|NO_SHARED_CIPHER|NO_CIPHERS|NO_SUITABLE|INAPPROPRIATE_FALLBACK|ALERT_HANDSHAKE_FAILURE|ALERT_PROTOCOL_VERSION/.test(code)) {
    return [`the client offered an old TLS version or only weak cipher suites (${code})`, "protocol"];
  }
  return [`the TLS handshake failed (${err.code ?? err.message})`, "handshake"];
}

/** The metric label for an OpenSSL X509_V_ERR_* name; a refusal without one is a failed handshake. */
function refusalKind(code: string | undefined): TlsRefusal {
  return code === undefined ? "handshake" : verifyCodeKind(code);
}

function errorCodeOf(value: string | Error | undefined | null): string | undefined {
  if (!value) return undefined;
  return typeof value === "string" ? value : ((value as NodeJS.ErrnoException).code ?? value.message);
}

