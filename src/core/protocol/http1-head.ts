// The two pieces of HTTP/1.1 a tunnel speaks itself (RFC 9112): writing a request head
// (CONNECT, or an app's Upgrade request passed on) and reading the response head that
// answers it, byte-exact so whatever follows the head is handed on untouched.

export interface ResponseHead {
  status: number;
  reason: string;
  headers: Headers;
  /** Bytes of the head, final CRLFCRLF included: what follows belongs to the tunnel. */
  length: number;
}

/** A response head larger than this is refused (Envoy's default max_request_headers_kb is 60). */
export const MAX_HEAD_BYTES = 64 * 1024;

const CRLFCRLF = [13, 10, 13, 10] as const;
const decoder = new TextDecoder("latin1");
const encoder = new TextEncoder();

/** Where the head ends (index just past CRLFCRLF), or -1 if not yet. */
export function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === CRLFCRLF[0] && bytes[i + 1] === CRLFCRLF[1] && bytes[i + 2] === CRLFCRLF[2] && bytes[i + 3] === CRLFCRLF[3]) return i + 4;
  }
  return -1;
}

/**
 * The response head at the start of `bytes`; undefined while incomplete. Throws an Error
 * naming what is wrong for something that is not an HTTP/1.x response head.
 */
export function parseResponseHead(bytes: Uint8Array): ResponseHead | undefined {
  const end = headEnd(bytes);
  if (end < 0) {
    if (bytes.length > MAX_HEAD_BYTES) throw new Error(`response head larger than ${MAX_HEAD_BYTES} bytes`);
    return undefined;
  }
  const lines = decoder.decode(bytes.subarray(0, end - 4)).split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0] ?? "");
  if (!status) throw new Error(`not an HTTP/1.1 status line: ${JSON.stringify((lines[0] ?? "").slice(0, 60))}`);
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new Error(`malformed response header line: ${JSON.stringify(line.slice(0, 60))}`);
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(status[1]), reason: status[2] ?? "", headers, length: end };
}

/** "METHOD target HTTP/1.1" plus headers and the blank line, as bytes. */
export function requestHead(method: string, target: string, headers: Headers | Iterable<[string, string]>): Uint8Array {
  let text = `${method} ${target} HTTP/1.1\r\n`;
  for (const [name, value] of headers) {
    // Header injection: a value with CR or LF would start a second header or request.
    if (/[\r\n]/.test(name) || /[\r\n]/.test(value)) throw new Error(`header ${JSON.stringify(name)} holds a line break`);
    text += `${name}: ${value}\r\n`;
  }
  return encoder.encode(`${text}\r\n`);
}

/** A short response head with no body (a tunnel's own answers: 200 Connection established, 403, 502). */
export function responseHead(status: number, reason: string, headers: Record<string, string> = {}): Uint8Array {
  let text = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (const [name, value] of Object.entries(headers)) text += `${name}: ${value}\r\n`;
  return encoder.encode(`${text}\r\n`);
}

/** A complete response with a short text body that closes the connection (refusals). */
export function closingResponse(status: number, reason: string, body: string): Uint8Array {
  const bytes = encoder.encode(body);
  const head = responseHead(status, reason, { "content-type": "text/plain; charset=utf-8", "content-length": String(bytes.length), connection: "close" });
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}
