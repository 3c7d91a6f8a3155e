// Web Request -> node:http request options and back: header filtering for the next hop
// and the upstream's IncomingMessage as a streaming web Response.

import type { IncomingMessage, OutgoingHttpHeaders } from "node:http";
import { Readable } from "node:stream";
import { hopByHopNames } from "./hop-by-hop.ts";

/** The request's headers minus hop-by-hop ones, with Host set to the original authority (e.g. "payments"). */
export function outgoingHeaders(headers: Headers, authority: string, hasBody = false): OutgoingHttpHeaders {
  const drop = hopByHopNames(headers.get("connection"));
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of headers) {
    if (drop.has(name) || name === "host") continue;
    const prior = out[name];
    out[name] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value];
  }
  out.host = authority;
  // node:http chunks a body of unknown length by itself only for methods other than GET,
  // HEAD, DELETE, OPTIONS, TRACE and CONNECT; for those it writes the body unframed after the
  // head, and the next hop reads it as another request (request smuggling, found by the
  // listener fuzzer). Saying so explicitly frames it for every method.
  if (hasBody && out["content-length"] === undefined) out["transfer-encoding"] = "chunked";
  return out;
}

const REASON_PHRASE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function toWebResponse(res: IncomingMessage, method: string): Response {
  const status = res.statusCode ?? 0;
  if (status < 200 || status > 599) throw new Error(`status ${status} cannot be relayed`);
  const drop = hopByHopNames(res.headers.connection);
  const headers = new Headers();
  const raw = res.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (!drop.has(raw[i]!.toLowerCase())) headers.append(raw[i]!, raw[i + 1]!);
  }
  const bodyless = method === "HEAD" || status === 204 || status === 304;
  if (bodyless) res.resume(); // let the socket go back to the pool
  const body = bodyless ? null : (Readable.toWeb(res) as unknown as ReadableStream<Uint8Array>);
  const statusText = res.statusMessage && REASON_PHRASE.test(res.statusMessage) ? res.statusMessage : "";
  return new Response(body, { status, statusText, headers });
}
