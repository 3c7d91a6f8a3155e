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

export interface LogOptions {
  /**
   * Access lines (msg "access", one per request) are gathered for this long and written
   * together: one write(2) per batch instead of one per request, which was ~8% of a
   * sidecar's CPU under load. Every other line is written at once, after the batch, so the
   * order is kept. 0 writes each line at once.
   */
  accessBatchMs?: number;
  /**
   * Whether access lines are written at all, asked per line so a config reload applies at
   * once (`access_log` in a config file, `remora proxy --access-log`). Off, an access line
   * costs neither its JSON nor its write: Istio and Linkerd ship with access logs off.
   */
  access?: () => boolean;
}

/** Past this many buffered bytes a batch is written before its timer fires. */
const BATCH_BYTES = 64 * 1024;

export function createLogger(base: Record<string, unknown>, out: LogSink = process.stdout, options: LogOptions = {}): Logger {
  // Serialised once: every line starts with the same pid, hostname and base fields.
  const fixed = JSON.stringify({ pid: process.pid, hostname: hostname(), ...base }).slice(1, -1);
  const batchMs = options.accessBatchMs ?? 0;
  const access = options.access;
  let pending = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    if (pending === "") return;
    const lines = pending;
    pending = "";
    out.write(lines);
  };
  // Lines still gathered when the process ends are written on the way out.
  if (batchMs > 0) process.once("exit", flush);
  const line = (level: number, obj: object, msg: string | undefined) => {
    if (access !== undefined && msg === "access" && !access()) return;
    // A replacer makes JSON.stringify call back for every field (it was 5% of a sidecar's
    // CPU on the access line), so it is used only for records that carry an Error.
    const rest = JSON.stringify(obj, hasError(obj) ? errorsAsObjects : undefined);
    const fields = rest.length > 2 ? `,${rest.slice(1, -1)}` : "";
    const text = `{"level":${level},"time":${Date.now()},${fixed}${fields}${msg === undefined ? "" : msgField(msg)}}\n`;
    if (batchMs > 0 && msg === "access") {
      pending += text;
      if (pending.length >= BATCH_BYTES) flush();
      else if (timer === undefined) {
        timer = setTimeout(flush, batchMs);
        // A batch waiting to be written must not keep a finished program running.
        (timer as { unref?: () => void }).unref?.();
      }
      return;
    }
    flush();
    out.write(text);
  };
  return {
    info: (obj, msg) => line(LEVELS.info, obj, msg),
    warn: (obj, msg) => line(LEVELS.warn, obj, msg),
    error: (obj, msg) => line(LEVELS.error, obj, msg),
  };
}

function hasError(obj: object): boolean {
  // for-in, not Object.values: no array per line (the access line is written per request).
  for (const key in obj) if ((obj as Record<string, unknown>)[key] instanceof Error) return true;
  return false;
}

/** `,"msg":"..."`, serialised once per message: messages are a few fixed sentences. */
const msgFields = new Map<string, string>();
function msgField(msg: string): string {
  let field = msgFields.get(msg);
  if (field === undefined) {
    field = `,"msg":${JSON.stringify(msg)}`;
    if (msgFields.size < 256) msgFields.set(msg, field);
  }
  return field;
}

/** Errors have no enumerable fields and would log as {}; pino's err serializer keeps these three. */
function errorsAsObjects(_key: string, value: unknown): unknown {
  return value instanceof Error ? { type: value.name, message: value.message, stack: value.stack } : value;
}
