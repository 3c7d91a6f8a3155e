// Request body framing for the native Bun listener: a declared Content-Length or chunked
// transfer coding (RFC 9112 §6.3, §7.1), decoded as bytes arrive, strictly: a chunk-size
// line that is not hex digits (an optional extension after), a chunk not followed by CRLF,
// or a malformed trailer line ends the connection with a 400.

export class MalformedBody extends Error {}

/** Size lines and each trailer line are short; anything longer is an attack, not a body. */
const MAX_LINE = 4096;
const SIZE_LINE = /^([0-9A-Fa-f]{1,16})[ \t]*(;[^\x00-\x08\x0a-\x1f\x7f]*)?$/;
const TRAILER_LINE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*$/;

export interface BodyDecoder {
  /**
   * Decodes from `bytes`, handing each piece of body to `emit` (subarrays, not copies);
   * returns how many bytes belonged to the body. Throws MalformedBody.
   */
  feed(bytes: Uint8Array, emit: (piece: Uint8Array) => void): number;
  readonly done: boolean;
}

export function lengthDecoder(length: number): BodyDecoder {
  let left = length;
  return {
    feed(bytes, emit) {
      const n = Math.min(left, bytes.length);
      if (n > 0) emit(n === bytes.length ? bytes : bytes.subarray(0, n));
      left -= n;
      return n;
    },
    get done() {
      return left === 0;
    },
  };
}

type State = "size" | "data" | "data-end" | "trailer" | "done";

export function chunkedDecoder(): BodyDecoder {
  let state: State = "size";
  let line = "";
  let left = 0;
  let trailerBytes = 0;
  return {
    feed(bytes, emit) {
      let i = 0;
      while (i < bytes.length && state !== "done") {
        if (state === "data") {
          const n = Math.min(left, bytes.length - i);
          emit(bytes.subarray(i, i + n));
          i += n;
          left -= n;
          if (left === 0) state = "data-end";
          continue;
        }
        // Line states: size line, the CRLF after a chunk, trailer lines. Each ends in CRLF.
        const b = bytes[i++]!;
        if (b !== 10) {
          line += String.fromCharCode(b);
          if (line.length > MAX_LINE) throw new MalformedBody("chunk-size or trailer line too long");
          continue;
        }
        if (!line.endsWith("\r")) throw new MalformedBody("chunked body line not ended by CRLF");
        const text = line.slice(0, -1);
        line = "";
        if (state === "data-end") {
          if (text !== "") throw new MalformedBody("chunk data not followed by CRLF");
          state = "size";
        } else if (state === "size") {
          const m = SIZE_LINE.exec(text);
          if (!m) throw new MalformedBody("invalid chunk size");
          left = parseInt(m[1]!, 16);
          if (!Number.isSafeInteger(left)) throw new MalformedBody("chunk size too large");
          state = left === 0 ? "trailer" : "data";
        } else if (text === "") {
          state = "done";
        } else {
          trailerBytes += text.length;
          if (!TRAILER_LINE.test(text) || trailerBytes > MAX_LINE * 4) throw new MalformedBody("malformed trailer field");
        }
      }
      return i;
    },
    get done() {
      return state === "done";
    },
  };
}
