// The client side of the mesh tunnel (docs/protocols.md): an mTLS connection to a peer
// sidecar's inbound listener, verified exactly like a request's (connect.ts: chain, then the
// SPIFFE ID the control plane published), over which one HTTP/1.1 head is sent: a CONNECT to
// the peer's local app port (opaque TCP), or the app's own Upgrade request (WebSocket). Then
// the connection carries the app's bytes. node:tls works on Node, Bun and Deno alike.

import tls from "node:tls";
import type { Duplex as NodeDuplex } from "node:stream";
import type { Endpoint } from "../../core/endpoint.ts";
import { parseResponseHead, type ResponseHead } from "../../core/protocol/http1-head.ts";
import { UpstreamError, type OriginationMode } from "../../core/upstream.ts";
import type { Duplex, TlsMaterial } from "../types.ts";
import { TunnelRefused, type MeshTunnelDialer, type MeshTunnelOptions, type OpenedTunnel } from "../tunnel-dialer.ts";
import { connectionFacts, openConnection } from "./connect.ts";

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export function createMeshTunnelDialer(options: MeshTunnelOptions): MeshTunnelDialer {
  let context: { material: TlsMaterial; ctx: tls.SecureContext } | undefined;
  const secureContext = (): tls.SecureContext => {
    const m = options.material();
    if (context?.material !== m) context = { material: m, ctx: tls.createSecureContext({ cert: m.certPem, key: m.keyPem, ca: m.bundlePem, minVersion: "TLSv1.2" }) };
    return context.ctx;
  };
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;

  return {
    reloadTls() {
      context = undefined;
    },
    open(endpoint, o) {
      return new Promise<OpenedTunnel>((resolve, reject) => {
        openConnection(
          { mode: o.mode === "DISABLE" ? "DISABLE" : "MUTUAL", endpoint, verifyPeer: options.verifyPeer, connectTimeoutMs: timeoutMs, ...(o.mode === "DISABLE" ? {} : { secureContext: secureContext() }) },
          (err, socket) => {
            if (err) return reject(err);
            const facts = connectionFacts.get(socket);
            const peerIdentity = facts?.peerIdentity;
            const known = { ...(peerIdentity ? { peerIdentity } : {}), ...(facts?.handshakeMs !== undefined ? { handshakeMs: facts.handshakeMs } : {}) };
            // Half-close passes through tunnels (src/sidecar/pipe.ts); connect.ts opens sockets without it.
            (socket as unknown as { allowHalfOpen: boolean }).allowHalfOpen = true;
            const duplex = socket as unknown as Duplex;
            socket.write(o.head);
            if (o.expect === "raw") return resolve({ socket: duplex, ...known, rest: new Uint8Array(0) });
            readAnswer(socket, endpoint.address, timeoutMs, o.signal).then(
              ({ head, rest }) => {
                if (head.status >= 200 && head.status < 300) return resolve({ socket: duplex, ...known, rest });
                duplex.destroy();
                const reason = new TextDecoder().decode(rest).trim();
                // 502/503: the peer could not reach its app. Nothing of the app's protocol was
                // sent yet, so for retry_on this is a connect failure like a refused TCP connect.
                if (head.status === 502 || head.status === 503) {
                  return reject(new UpstreamError("connect-failure", endpoint.address, `peer ${endpoint.address} could not reach its app: ${reason || `${head.status} ${head.reason}`}`));
                }
                reject(new TunnelRefused(head.status, head, rest, `peer ${endpoint.address} refused the tunnel with ${head.status}: ${reason || head.reason}`));
              },
              (e: unknown) => {
                duplex.destroy();
                reject(e);
              },
            );
          },
        );
      });
    },
  };
}

/** Reads the CONNECT answer's head; what follows it in the same reads is returned as `rest`. */
function readAnswer(socket: NodeDuplex, address: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<{ head: ResponseHead; rest: Uint8Array }> {
  return new Promise((resolve, reject) => {
    let seen: Uint8Array = new Uint8Array(0);
    const finish = (error?: Error, value?: { head: ResponseHead; rest: Uint8Array }) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      if (error) reject(error);
      else {
        socket.pause();
        resolve(value!);
      }
    };
    const onData = (chunk: Uint8Array) => {
      const next = new Uint8Array(seen.length + chunk.length);
      next.set(seen);
      next.set(chunk, seen.length);
      seen = next;
      let head: ResponseHead | undefined;
      try {
        head = parseResponseHead(seen);
      } catch (e) {
        return finish(new UpstreamError("reset", address, `peer ${address} answered the tunnel request with something that is not HTTP: ${(e as Error).message}`));
      }
      if (head) finish(undefined, { head, rest: seen.slice(head.length) });
    };
    const onEnd = () => finish(new UpstreamError("reset", address, `peer ${address} closed the connection before answering the tunnel request`));
    const onError = (e: Error) => finish(new UpstreamError("reset", address, `peer ${address} reset the connection before answering the tunnel request: ${e.message}`));
    const onAbort = () => finish(signal!.reason instanceof Error ? signal!.reason : new Error(String(signal!.reason)));
    const timer = setTimeout(() => finish(new UpstreamError("timeout", address, `peer ${address} did not answer the tunnel request within ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener("abort", onAbort, { once: true });
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", onError);
    socket.resume();
  });
}
