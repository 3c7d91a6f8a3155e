// Reads what a listener answered on one connection as HTTP/1.1 responses (RFC 9112 §4, §6),
// for the listener fuzzer: every answer must parse, carry a final status, and a 4xx/5xx must
// say why (a reason phrase or a body).

export interface ParsedResponse {
  status: number;
  reason: string;
  headers: Map<string, string>;
  body: string;
}

export interface ResponseReading {
  responses: ParsedResponse[];
  /** Bytes after the last complete response (empty when everything parsed). */
  rest: string;
}

/** `methods[i]` is the method of the request the i-th response answers (HEAD has no body); default GET. */
export function readResponses(bytes: string, methods: readonly string[] = []): ResponseReading {
  const responses: ParsedResponse[] = [];
  let at = 0;
  while (at < bytes.length) {
    const m = /^HTTP\/1\.[01] (\d{3})(?: ([^\r\n]*))?\r\n/.exec(bytes.slice(at, at + 8192));
    if (!m) break;
    const end = bytes.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const headers = new Map<string, string>();
    for (const l of bytes.slice(at + m[0].length, end + 2).split("\r\n")) {
      if (l === "") continue;
      const colon = l.indexOf(":");
      if (colon <= 0) return { responses, rest: bytes.slice(at) };
      const name = l.slice(0, colon).toLowerCase();
      headers.set(name, headers.has(name) ? `${headers.get(name)}, ${l.slice(colon + 1).trim()}` : l.slice(colon + 1).trim());
    }
    const status = Number(m[1]);
    let pos = end + 4;
    let body = "";
    const bodiless = methods[responses.length] === "HEAD" || (status >= 100 && status < 200) || status === 204 || status === 304;
    if (!bodiless) {
      const read = readBody(bytes, pos, headers);
      if (read === undefined) break;
      body = read.body;
      pos = read.next;
    }
    responses.push({ status, reason: m[2] ?? "", headers, body });
    at = pos;
  }
  return { responses, rest: bytes.slice(at) };
}

function readBody(bytes: string, at: number, headers: Map<string, string>): { body: string; next: number } | undefined {
  if (/chunked/i.test(headers.get("transfer-encoding") ?? "")) {
    let body = "";
    let pos = at;
    for (;;) {
      const crlf = bytes.indexOf("\r\n", pos);
      if (crlf < 0) return undefined;
      const size = parseInt(bytes.slice(pos, crlf), 16);
      if (!Number.isSafeInteger(size)) return undefined;
      pos = crlf + 2;
      if (size === 0) {
        // Trailer fields until the empty line.
        for (;;) {
          const e = bytes.indexOf("\r\n", pos);
          if (e < 0) return undefined;
          const blank = e === pos;
          pos = e + 2;
          if (blank) return { body, next: pos };
        }
      }
      if (bytes.length - pos < size + 2) return undefined;
      body += bytes.slice(pos, pos + size);
      pos += size + 2;
    }
  }
  const length = headers.get("content-length");
  if (length !== undefined) {
    const n = Number(length);
    if (!Number.isSafeInteger(n) || bytes.length - at < n) return undefined;
    return { body: bytes.slice(at, at + n), next: at + n };
  }
  // Delimited by the close (RFC 9112 §6.3 rule 8).
  return { body: bytes.slice(at), next: bytes.length };
}

/** Why these answers are not acceptable, or undefined when they are. */
export function responseProblem(reading: ResponseReading): string | undefined {
  for (const r of reading.responses) {
    if (r.status < 200 || r.status > 599) return `status ${r.status} is not a final status`;
    if (r.status >= 400 && r.reason.trim() === "" && r.body === "") return `a ${r.status} with neither a reason phrase nor a body`;
  }
  if (reading.rest !== "") {
    const what = reading.rest.startsWith("HTTP/1.") ? "a response cut short or malformed" : "bytes that are not an HTTP/1.1 response";
    return `${what}: ${JSON.stringify(reading.rest.slice(0, 120))}`;
  }
  return undefined;
}

/** A complete first HTTP/2 frame of type SETTINGS (RFC 9113 §3.4: the server's preface). */
export const looksLikeH2 = (bytes: string) => bytes.length >= 9 && bytes.charCodeAt(3) === 0x04;
