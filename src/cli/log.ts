// The CLI's structured log: one JSON object per line on stdout, in pino's shape (level
// number, time, pid, hostname, base fields, then the record and msg), so every reader of
// remora logs (src/cli/json-lines.ts, operators' pipelines) sees what pino wrote before.
// Not pino itself: remora used none of its features (levels at run time, transports,
// redaction, child loggers) and it brought eleven CommonJS packages into every binary.

import { hostname } from "node:os";
import type { Logger } from "../sidecar/logger.ts";

const LEVELS = { info: 30, warn: 40, error: 50 } as const;

export interface LogSink {
  write(line: string): unknown;
}

export function createLogger(base: Record<string, unknown>, out: LogSink = process.stdout): Logger {
  // Serialised once: every line starts with the same pid, hostname and base fields.
  const fixed = JSON.stringify({ pid: process.pid, hostname: hostname(), ...base }).slice(1, -1);
  const line = (level: number, obj: object, msg: string | undefined) => {
    const rest = JSON.stringify(obj, errorsAsObjects);
    const fields = rest.length > 2 ? `,${rest.slice(1, -1)}` : "";
    out.write(`{"level":${level},"time":${Date.now()},${fixed}${fields}${msg === undefined ? "" : `,"msg":${JSON.stringify(msg)}`}}\n`);
  };
  return {
    info: (obj, msg) => line(LEVELS.info, obj, msg),
    warn: (obj, msg) => line(LEVELS.warn, obj, msg),
    error: (obj, msg) => line(LEVELS.error, obj, msg),
  };
}

/** Errors have no enumerable fields and would log as {}; pino's err serializer keeps these three. */
function errorsAsObjects(_key: string, value: unknown): unknown {
  return value instanceof Error ? { type: value.name, message: value.message, stack: value.stack } : value;
}
