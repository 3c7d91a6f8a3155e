// Turns node:http's "connect" and "upgrade" events into the adapter-neutral TunnelRequest
// (src/runtime/types.ts): the request head as a web Request, the raw socket, the bytes read
// past the head.

import type http from "node:http";
import type net from "node:net";
import type { ConnInfo, Duplex, TunnelRequest } from "../types.ts";

/**
 * The Fetch standard forbids CONNECT (and TRACE) as a Request method, and Node and Deno
 * enforce it, so a CONNECT arrives as a GET Request whose `kind` says "connect"; its URL
 * is `http://host:port/` from the authority-form target (RFC 9112 §3.2.3).
 */
export function toTunnelRequest(kind: TunnelRequest["kind"], req: http.IncomingMessage, socket: net.Socket, head: Buffer, info: ConnInfo, scheme: "http" | "https", fallbackAuthority: string): TunnelRequest {
  const target = req.url ?? "/";
  let url: string;
  if (kind === "connect") url = `http://${target}/`;
  else if (/^https?:\/\//i.test(target)) url = target;
  else url = `${scheme}://${req.headers.host || fallbackAuthority}${target.startsWith("/") ? target : `/${target}`}`;
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!);
  const method = kind === "connect" ? "GET" : (req.method ?? "GET");
  return {
    kind,
    request: new Request(url, { method, headers }),
    socket: socket as unknown as Duplex,
    head: new Uint8Array(head.buffer, head.byteOffset, head.length),
    info,
  };
}
