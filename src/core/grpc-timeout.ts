// The grpc-timeout request header (grpc/doc/PROTOCOL-HTTP2.md): "Timeout → TimeoutValue
// TimeoutUnit", TimeoutValue a positive integer of at most 8 ASCII digits, TimeoutUnit one
// of H (hours), M (minutes), S (seconds), m (ms), u (µs), n (ns).

const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * The timeout in whole milliseconds, or undefined when the header is absent or malformed
 * (then it is ignored, as Envoy and grpc-go do). A sub-millisecond value rounds up to 1 ms,
 * so a deadline that was set never reads as "no deadline"; 0 is not a positive integer.
 */
export function parseGrpcTimeout(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined) return undefined;
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim());
  if (m === null) return undefined;
  const amount = Number(m[1]);
  if (amount <= 0) return undefined;
  return Math.max(1, Math.ceil(amount * UNIT_MS[m[2]!]!));
}

/** The header value for `ms` milliseconds: the largest unit that keeps it exact and within 8 digits. */
export function formatGrpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.ceil(ms));
  if (whole <= 99_999_999) return `${whole}m`;
  const seconds = Math.ceil(whole / 1000);
  if (seconds <= 99_999_999) return `${seconds}S`;
  return `${Math.min(99_999_999, Math.ceil(seconds / 60))}M`;
}
