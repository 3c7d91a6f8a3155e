// W3C Trace Context (https://www.w3.org/TR/trace-context/): parsing and writing
// `traceparent`, and what a participating proxy sends on for each hop.

/** A valid traceparent, read as version 00 (higher versions are downgraded). */
export interface TraceParent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** 16 lowercase hex digits, not all zero: the caller's span. */
  parentId: string;
  /** The trace-flags byte as received; only bit 0 (sampled) has a meaning. */
  flags: number;
  sampled: boolean;
}

export interface Hop {
  traceId: string;
  /** This hop's span id, sent on as the outgoing parent-id. */
  spanId: string;
  /** The caller's span id, when a valid traceparent came in. */
  parentSpanId?: string;
  sampled: boolean;
  /** The `traceparent` to send on (version 00, lowercase). */
  traceparent: string;
  /** The incoming `tracestate`, unchanged; absent when there was none or the trace restarted. */
  tracestate?: string;
  /** True when no valid traceparent came in, so this hop started a new trace. */
  restarted: boolean;
}

export type RandomBytes = (n: number) => Uint8Array;

const ALL_ZERO = /^0+$/;
const LOWER_HEX_2 = /^[0-9a-f]{2}$/;
// trace-id, parent-id and flags sit at the same offsets in every version (spec §"Versioning").
const V00_FIELDS = /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})/;
const V00_LENGTH = 55;

/**
 * Reads a traceparent header value; undefined when it must be ignored: wrong length or
 * delimiters, uppercase hex, version ff, all-zero trace-id or parent-id, or a version-00
 * value with extra fields. A higher version is read at the version-00 positions, its
 * extra fields ignored, as the spec requires of version-00 parsers.
 */
export function parseTraceparent(value: string | null | undefined): TraceParent | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  const version = v.slice(0, 2);
  if (!LOWER_HEX_2.test(version) || version === "ff" || v.length < V00_LENGTH) return undefined;
  if (version === "00" && v.length !== V00_LENGTH) return undefined;
  if (v.length > V00_LENGTH && v[V00_LENGTH] !== "-") return undefined;
  const m = V00_FIELDS.exec(v);
  if (m === null) return undefined;
  const [, traceId = "", parentId = "", flagsHex = ""] = m;
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(parentId)) return undefined;
  const flags = Number.parseInt(flagsHex, 16);
  // Only bit 0 is defined; test it with a mask, never by comparing the byte.
  return { traceId, parentId, flags, sampled: (flags & 0x01) === 0x01 };
}

/** Writes a version-00 traceparent; unknown flag bits are sent as 0, as the spec requires. */
export function formatTraceparent(tp: { traceId: string; parentId: string; sampled: boolean }): string {
  return `00-${tp.traceId}-${tp.parentId}-${tp.sampled ? "01" : "00"}`;
}

// Ids are drawn from a 4 KiB pool of random bytes refilled when spent: one
// getRandomValues call per ~170 hops instead of two per hop (it was 3.7% of a sidecar's CPU).
// Trace and span ids need uniqueness, not secrecy, so sharing a buffer costs nothing.
const POOL_BYTES = 4096;
let pool = new Uint8Array(0);
let poolAt = 0;
const defaultRandomBytes: RandomBytes = (n) => {
  if (poolAt + n > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(Math.max(POOL_BYTES, n)));
    poolAt = 0;
  }
  poolAt += n;
  return pool.subarray(poolAt - n, poolAt);
};

/** ASCII of the lowercase hex digits. */
const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
const latin1 = new TextDecoder("latin1");
// The id's ASCII is written here and decoded once: building it two digits at a time made a
// string per byte (issue 8: allocation per request).
const scratch = new Uint8Array(64);

/** A random id of n bytes as lowercase hex, never all zero (an all-zero id is invalid). */
export function randomId(n: number, randomBytes: RandomBytes = defaultRandomBytes): string {
  const bytes = randomBytes(n);
  if (bytes.length < n) throw new RangeError(`randomBytes returned ${bytes.length} bytes, wanted ${n}`);
  if (n > scratch.length / 2) throw new RangeError(`ids are at most ${scratch.length / 2} bytes, wanted ${n}`);
  let zero = true;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b !== 0) zero = false;
    scratch[2 * i] = HEX_DIGITS[b >> 4]!;
    scratch[2 * i + 1] = HEX_DIGITS[b & 15]!;
  }
  if (zero) scratch[2 * n - 1] = HEX_DIGITS[1]!;
  return latin1.decode(scratch.subarray(0, 2 * n));
}

/**
 * The trace context a participating proxy sends on (spec §"Mutating the traceparent
 * field", processing model): a valid incoming traceparent keeps its trace-id and sampled
 * flag, gets this hop's new span id as parent-id, and its tracestate is forwarded
 * unchanged (several header lines joined by commas). A missing or invalid one starts a
 * new trace and drops tracestate. `sampleNew` decides the sampled flag of new traces.
 */
export function nextHop(
  headers: Headers,
  randomBytes: RandomBytes = defaultRandomBytes,
  options: { sampleNew?: boolean } = {},
): Hop {
  const incoming = parseTraceparent(headers.get("traceparent"));
  const spanId = randomId(8, randomBytes);
  if (incoming === undefined) {
    const traceId = randomId(16, randomBytes);
    const sampled = options.sampleNew ?? true;
    return { traceId, spanId, sampled, traceparent: formatTraceparent({ traceId, parentId: spanId, sampled }), restarted: true };
  }
  const hop: Hop = {
    traceId: incoming.traceId,
    spanId,
    parentSpanId: incoming.parentId,
    sampled: incoming.sampled,
    traceparent: formatTraceparent({ traceId: incoming.traceId, parentId: spanId, sampled: incoming.sampled }),
    restarted: false,
  };
  // Headers.get joins repeated lines with ", ", which the tracestate grammar allows.
  const state = headers.get("tracestate")?.trim();
  if (state !== undefined && state !== "") hop.tracestate = state;
  return hop;
}
