// Writes one HTTP/1.1 request (RFC 9112 §3, §6, §7.1) on a connection: the head with
// hop-by-hop headers removed and Host set to the original authority, then the body as it
// streams, with its Content-Length when the caller gave one, chunked otherwise.

import { hopByHopNames } from "../node/hop-by-hop.ts";
import { urlParts } from "../../core/url-parts.ts";
import type { ByteSocket } from "./socket.ts";

const encoder = new TextEncoder();
const CRLF = encoder.encode("\r\n");
const LAST_CHUNK = encoder.encode("0\r\n\r\n");
/** Methods whose bodiless request still states a zero length, as Node's client does. */
const EXPECTS_BODY = new Set(["POST", "PUT", "PATCH"]);
const CR_OR_LF = /[\r\n]/;

export class RequestBodyFailed extends Error {}

/** `length`: the declared Content-Length, when it is a safe integer. */
export function requestHead(req: Request): { head: Uint8Array; chunked: boolean; length: number | undefined } {
  const url = urlParts(req.url);
  const drop = hopByHopNames(req.headers.get("connection"));
  // Pieces joined once: `text += \`${name}: ${value}\r\n\`` made three rope strings per field (issue 8).
  const parts = [req.method, " ", url.pathname, url.search, " HTTP/1.1\r\nhost: ", url.host, "\r\n"];
  let hasLength = false;
  let length: number | undefined;
  // forEach, not for-of: the iterator makes a [name, value] array per field.
  req.headers.forEach((value, name) => {
    if (drop.has(name) || name === "host") return;
    if (name === "content-length") {
      hasLength = true;
      length = Number(value);
    }
    if (CR_OR_LF.test(value)) return; // Headers never holds these; belt and braces against splitting
    parts.push(name, ": ", value, "\r\n");
  });
  let chunked = false;
  if (req.body !== null && !hasLength) {
    parts.push("transfer-encoding: chunked\r\n");
    chunked = true;
  } else if (req.body === null && !hasLength && EXPECTS_BODY.has(req.method)) {
    parts.push("content-length: 0\r\n");
  }
  parts.push("\r\n");
  return { head: encoder.encode(parts.join("")), chunked, length: length !== undefined && Number.isSafeInteger(length) ? length : undefined };
}

/**
 * Streams the body with backpressure. A body that fails (the downstream client went away)
 * rejects with RequestBodyFailed carrying its own error; so does one that ends short of,
 * or runs past, the Content-Length the head announced (the server would read the next
 * request's head as the rest of this body). A connection that fails rejects with the
 * connection's error.
 */
export async function writeBody(body: ReadableStream<Uint8Array>, socket: ByteSocket, chunked: boolean, length?: number): Promise<void> {
  const reader = body.getReader();
  let sent = 0;
  try {
    for (;;) {
      let next: Awaited<ReturnType<typeof reader.read>>;
      try {
        next = await reader.read();
      } catch (err) {
        throw new RequestBodyFailed("the request body failed", { cause: err });
      }
      if (next.done) break;
      const chunk = next.value;
      if (chunk.byteLength === 0) continue;
      sent += chunk.byteLength;
      if (length !== undefined && sent > length) throw new RequestBodyFailed(`the request body ran past its content-length of ${length} bytes`);
      if (chunked) {
        await socket.write(encoder.encode(`${chunk.byteLength.toString(16)}\r\n`));
        await socket.write(chunk);
        await socket.write(CRLF);
      } else {
        await socket.write(chunk);
      }
    }
    if (chunked) await socket.write(LAST_CHUNK);
    if (length !== undefined && sent !== length) throw new RequestBodyFailed(`the request body ended after ${sent} of its ${length} bytes`);
  } catch (err) {
    reader.cancel().catch(() => {});
    throw err;
  } finally {
    reader.releaseLock();
  }
}
