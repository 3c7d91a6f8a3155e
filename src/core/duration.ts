// Durations as operators write them in policies and config ("250ms", "1m30s"), in
// Go/Envoy's notation, converted to and from milliseconds.

import { RemoraError } from "./errors.ts";

/** Microseconds per unit; parsing sums integer microseconds so "1.1s" is exactly 1100 ms. */
const UNIT_US: Readonly<Record<string, number>> = {
  us: 1,
  "µs": 1,
  ms: 1_000,
  s: 1_000_000,
  m: 60_000_000,
  h: 3_600_000_000,
};

// One or more "<decimal><unit>" terms, like Go's time.ParseDuration (no sign: a
// negative timeout means nothing in a policy).
const TERM = /(\d+(?:\.\d+)?|\.\d+)(us|µs|ms|s|m|h)/y;

/**
 * Parses "250ms", "30s", "1.5s", "1m30s", "500us" or "0" into milliseconds (possibly
 * fractional below 1 ms). Throws RemoraError(ERR_DURATION) naming the text otherwise.
 */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === "0") return 0;
  let us = 0;
  let at = 0;
  while (at < s.length) {
    TERM.lastIndex = at;
    const m = TERM.exec(s);
    if (m === null) throw notADuration(text);
    const [, num = "", unit = ""] = m;
    const per = UNIT_US[unit] ?? 0;
    const [int = "", frac = ""] = num.split(".");
    us += Number(int || "0") * per + (frac === "" ? 0 : Math.round(Number(`0.${frac}`) * per));
    at = TERM.lastIndex;
  }
  if (at === 0 || !Number.isFinite(us)) throw notADuration(text);
  return us / 1000;
}

function notADuration(text: string): RemoraError {
  return new RemoraError("ERR_DURATION", `${JSON.stringify(text)} is not a duration`);
}

/**
 * Formats milliseconds the way an operator would write them, so that
 * parseDuration(formatDuration(ms)) === ms: 250 -> "250ms", 30000 -> "30s",
 * 90000 -> "1m30s", 1500 -> "1.5s", 0 -> "0".
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot format ${ms} as a duration`);
  if (ms === 0) return "0";
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms - h * 3_600_000) / 60_000);
  // Integer arithmetic from here on keeps "1.5s" from becoming "1.4999999999s".
  const restUs = Math.round((ms - h * 3_600_000 - m * 60_000) * 1000);
  let out = (h > 0 ? `${h}h` : "") + (m > 0 ? `${m}m` : "");
  if (restUs === 0) return out;
  if (restUs % 1000 !== 0 && restUs < 1000) return `${out}${restUs}us`;
  if (restUs < 1_000_000 && out === "") return `${restUs / 1000}ms`;
  out += `${restUs / 1_000_000}s`;
  return out;
}
