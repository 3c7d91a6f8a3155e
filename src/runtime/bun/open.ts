// Opens one upstream connection with Bun.connect and hands it over only once it is fully
// trusted: TCP connected, the chain verified by Bun's TLS (BoringSSL) against the bundle,
// and the peer's SPIFFE ID accepted by the injected verifier. Nothing is written before.

import type { Endpoint } from "../../core/endpoint.ts";
import { UpstreamError, type OriginationMode } from "../../core/upstream.ts";
import type { PeerVerifier, TlsMaterial } from "../types.ts";
import { parseHostPort } from "../node/address.ts";
import { connectError, identityError } from "../node/upstream-errors.ts";
import { bunApi, type BunSocket } from "./bun-api.ts";
import { ByteSocket } from "./socket.ts";

export interface OpenTarget {
  mode: OriginationMode;
  endpoint: Endpoint;
  material: TlsMaterial;
  verifyPeer: PeerVerifier;
  connectTimeoutMs: number;
  signal: AbortSignal;
  /** The error to reject with when `signal` aborts (per-try timeout or the caller's reason). */
  aborted: () => unknown;
}

/** What a connection proved at its handshake; kept for the requests that reuse it. */
export interface OpenedConnection {
  socket: ByteSocket;
  peerIdentity?: string;
  peerSerial?: string;
  handshakeMs?: number;
}

/**
 * SVIDs name a SPIFFE ID and no DNS name or IP, so Bun's host-name check always fails with
 * this code once the chain itself verified. Bun.connect has no checkServerIdentity hook, so
 * the adapter asks Bun not to reject (rejectUnauthorized: false), refuses every other
 * verification error itself, and lets the verifier check the SPIFFE ID instead of a name.
 */
const HOST_NAME_MISMATCH = "ERR_TLS_CERT_ALTNAME_INVALID";

export function openConnection(target: OpenTarget): Promise<OpenedConnection> {
  const address = target.endpoint.address;
  const { host, port } = parseHostPort(address, "endpoint address");
  const secure = target.mode !== "DISABLE";
  const bytes = new ByteSocket();
  const started = performance.now();
  let tcpReadyAt: number | undefined;

  return new Promise<OpenedConnection>((resolve, reject) => {
    let settled = false;
    let failed = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      failed = true;
      cleanup();
      bytes.destroy();
      reject(err);
    };
    const succeed = (opened: OpenedConnection) => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(opened);
    };
    const timer = setTimeout(() => fail(new UpstreamError("connect-failure", address,
      `cannot connect to upstream ${address}: no connection within ${target.connectTimeoutMs} ms`)), target.connectTimeoutMs);
    const onAbort = () => fail(target.aborted());
    target.signal.addEventListener("abort", onAbort, { once: true });
    const cleanup = () => {
      clearTimeout(timer);
      target.signal.removeEventListener("abort", onAbort);
    };
    // A close before the handshake finished: the peer dropped or reset the connection.
    bytes.onClose((err) => fail(connectError(err ?? Object.assign(new Error("closed"), { code: "ECONNRESET" }), address)));

    const handshake = (socket: BunSocket, _ok: boolean, authError: (Error & { code?: string }) | null) => {
      bytes.socket = socket;
      if (authError && authError.code !== HOST_NAME_MISMATCH) {
        fail(connectError(authError, address));
        return;
      }
      void verify(socket);
    };

    async function verify(socket: BunSocket): Promise<void> {
      const handshakeMs = performance.now() - (tcpReadyAt ?? started);
      const cert = socket.getPeerCertificate();
      const raw = cert?.raw;
      // Bun shows the peer's leaf only, not the intermediates it sent; the verifier anchors
      // the leaf in the bundle, which holds for remora's CA (it signs SVIDs from the root).
      const chainDer = raw ? [new Uint8Array(raw)] : [];
      const uris = (cert?.subjectaltname ?? "").split(", ").filter((s) => s.startsWith("URI:")).map((s) => s.slice(4));
      try {
        const peerIdentity = await target.verifyPeer(chainDer, target.endpoint.identity);
        succeed({ socket: bytes, peerIdentity, handshakeMs, ...(cert?.serialNumber ? { peerSerial: cert.serialNumber.toUpperCase() } : {}) });
      } catch (err) {
        fail(identityError(err, address, uris, target.endpoint.identity));
      }
    }

    const m = target.material;
    bunApi().connect({
      hostname: host,
      port,
      ...(secure ? {
        tls: {
          ca: m.bundlePem,
          ...(target.mode === "MUTUAL" ? { cert: m.certPem, key: m.keyPem } : {}),
          rejectUnauthorized: false,
          // SNI only for names; an IP address in SNI is not allowed (RFC 6066 §3).
          ...(/^[\d.]+$|:/.test(host) ? {} : { serverName: host }),
        },
      } : {}),
      socket: {
        ...bytes.handlers(secure ? handshake : undefined),
        open: (socket) => {
          tcpReadyAt = performance.now();
          socket.setNoDelay(true);
          bytes.socket = socket;
          if (!secure) succeed({ socket: bytes });
        },
        connectError: (_s, err) => fail(connectError(err, address)),
      },
    }).then((socket) => {
      bytes.socket ??= socket;
      if (failed) socket.terminate(); // timed out or aborted before Bun finished connecting
    }, (err: unknown) => fail(connectError(err, address)));
  });
}
