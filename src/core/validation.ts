// Turns valibot issues into one sentence naming the dotted path and the file
// ("policies/payments.yaml: route.timeout: "25x" is not a duration"), plus the few field
// schemas (durations, bounded integers, enums) whose messages those sentences rely on.
// Used for policy documents and for the sidecar's and control plane's own config.

import * as v from "valibot";
import { formatDuration, parseDuration } from "./duration.ts";
import { RemoraError } from "./errors.ts";
import type { ErrorCode } from "./errors.ts";

/** One problem in a document: where (dotted path, "" for the root) and what. */
export interface ValidationIssue {
  path: string;
  message: string;
}

/** A RemoraError whose message is the first issue's sentence; `issues` holds all of them. */
export class ValidationError extends RemoraError {
  readonly issues: readonly ValidationIssue[];
  readonly source: string | undefined;
  constructor(code: ErrorCode, issues: readonly [ValidationIssue, ...ValidationIssue[]], source?: string) {
    super(code, issueSentence(issues[0], source));
    this.name = "ValidationError";
    this.issues = issues;
    this.source = source;
  }
}

export interface ValidateOptions {
  /** File (or other origin) named at the start of the sentence. */
  source?: string;
  /** Defaults to ERR_CONFIG_INVALID. */
  code?: ErrorCode;
  /** Prepended to every path, for documents nested inside a larger one. */
  pathPrefix?: string;
}

/** "file: path: message", leaving out what is empty. */
export function issueSentence(issue: ValidationIssue, source?: string): string {
  return [source, issue.path, issue.message].filter((s) => s !== undefined && s !== "").join(": ");
}

/**
 * Parses `input` with `schema`; on failure throws a ValidationError whose message is
 * the first issue as one sentence and whose `issues` lists them all.
 */
export function validate<S extends v.GenericSchema>(schema: S, input: unknown, options: ValidateOptions = {}): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (result.success) return result.output;
  // A misspelt field also shows up as a missing one; the misspelling is the better first sentence.
  const unique = new Map<string, ValidationIssue>();
  for (const i of result.issues.map((i) => describeIssue(i, schema))) unique.set(`${i.path}\n${i.message}`, i);
  const issues = [...unique.values()].sort((a, b) => rank(a) - rank(b));
  const prefixed = issues.map((i) => ({ ...i, path: joinPath(options.pathPrefix, i.path) }));
  throw new ValidationError(options.code ?? "ERR_CONFIG_INVALID", prefixed as [ValidationIssue, ...ValidationIssue[]], options.source);
}

/** Throws a ValidationError for a rule checked outside a schema (e.g. across fields after defaults). */
export function invalid(path: string, message: string, options: ValidateOptions = {}): never {
  throw new ValidationError(options.code ?? "ERR_CONFIG_INVALID", [{ path: joinPath(options.pathPrefix, path), message }], options.source);
}

const rank = (i: ValidationIssue) => (i.message.startsWith("unknown field") ? 0 : 1);

function joinPath(prefix: string | undefined, path: string): string {
  if (prefix === undefined || prefix === "") return path;
  if (path === "") return prefix;
  return path.startsWith("[") ? prefix + path : `${prefix}.${path}`;
}

/** Converts one valibot issue (with its path) into a ValidationIssue. */
export function describeIssue(issue: v.BaseIssue<unknown>, rootSchema?: v.GenericSchema): ValidationIssue {
  const keys = (issue.path ?? []).map((p) => p.key);
  const path = formatPath(keys);
  const isKeyIssue = issue.type === "strict_object" && issue.path?.at(-1)?.origin === "key";
  // valibot's object schemas take a list as an object with keys "0", "1", ...
  if (isKeyIssue && Array.isArray(issue.path?.at(-1)?.input)) {
    return { path: formatPath(keys.slice(0, -1)), message: "expected a mapping but got a list" };
  }
  if (isKeyIssue && issue.expected === "never") {
    const candidates = rootSchema === undefined ? [] : entryNamesAt(rootSchema, keys.slice(0, -1));
    const hint = suggest(String(keys.at(-1)), candidates);
    return { path, message: hint === undefined ? "unknown field" : `unknown field, did you mean "${hint}"?` };
  }
  if (isKeyIssue) return { path, message: "required field is missing" };
  // A schema author's own message is kept; valibot's default wording
  // ("Invalid type: Expected Object but received "x"") is rewritten for people.
  const m = /^Invalid [\w ]+: Expected (.*) but received (.*)$/s.exec(issue.message);
  if (m === null) return { path, message: issue.message };
  if (issue.kind === "schema") {
    return { path, message: `expected ${friendlyExpected(issue.expected)} but got ${describeValue(issue.input)}` };
  }
  return { path, message: `expected ${m[1]} but got ${m[2]}` };
}

function formatPath(keys: unknown[]): string {
  let out = "";
  for (const k of keys) {
    if (typeof k === "number") out += `[${k}]`;
    else out += out === "" ? String(k) : `.${String(k)}`;
  }
  return out;
}

const EXPECTED_WORDS: Readonly<Record<string, string>> = {
  Object: "a mapping",
  Array: "a list",
  string: "a string",
  number: "a number",
  boolean: "true or false",
  null: "null",
};

function friendlyExpected(expected: string | null): string {
  if (expected === null) return "something else";
  const parts = expected.replace(/^\((.*)\)$/, "$1").split(" | ");
  return parts.map((p) => EXPECTED_WORDS[p] ?? p).join(" or ");
}

/** How a value is shown inside a sentence: strings quoted, containers by kind. */
export function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return JSON.stringify(value);
  return String(value);
}

// Follows the path through the schema to the object whose field names a typo should be
// compared with. Looks through optional/nullable wrappers, lists and unions.
function entryNamesAt(schema: v.GenericSchema, keys: unknown[]): string[] {
  let current: unknown[] = [schema];
  for (const key of keys) {
    current = current.flatMap(unwrap).flatMap((s) => {
      const o = s as { entries?: Record<string, unknown>; item?: unknown };
      if (typeof key === "number" && o.item !== undefined) return [o.item];
      if (typeof key === "string" && o.entries !== undefined && key in o.entries) return [o.entries[key]];
      return [];
    });
  }
  return current.flatMap(unwrap).flatMap((s) => Object.keys((s as { entries?: object }).entries ?? {}));
}

function unwrap(schema: unknown): unknown[] {
  const s = schema as { wrapped?: unknown; options?: unknown[] };
  if (s.wrapped !== undefined) return unwrap(s.wrapped);
  if (Array.isArray(s.options)) return s.options.flatMap(unwrap);
  return [schema];
}

/** The candidate a typo most likely meant ("retry_polcy" -> "retry_policy"), if any is close. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    if (squash(c) === squash(word)) return c;
    // "outlier" for "outlier_detection": a clipped name is as telling as a typo.
    if (word.length >= 4 && c.startsWith(word)) return c;
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(1, Math.min(3, Math.floor(word.length / 3))) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost);
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

// ---- field schemas whose messages read well in the sentences above ----

/** The longest delay setTimeout honours (a signed 32-bit count of ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A duration written as text ("250ms", "1m30s") or the bare number 0, output in ms.
 * `positive`: 0 is refused (for limits where 0 would mean "never").
 */
export function durationField(options: { positive?: boolean } = {}) {
  return v.pipe(
    v.union([v.string(), v.number()], (issue) => `expected a duration like "250ms" but got ${describeValue(issue.input)}`),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      const raw = dataset.value;
      // A bare YAML number has no unit; only 0 is unambiguous.
      if (typeof raw === "number" && raw !== 0) {
        addIssue({ message: `${raw} is not a duration, write it with a unit such as "${raw}s" or "${raw}ms"` });
        return NEVER;
      }
      let ms: number;
      try {
        ms = typeof raw === "number" ? 0 : parseDuration(raw);
      } catch (e) {
        addIssue({ message: e instanceof Error ? e.message : String(e) });
        return NEVER;
      }
      if (options.positive === true && ms === 0) {
        addIssue({ message: "must be greater than 0" });
        return NEVER;
      }
      // setTimeout in Node, Bun and Deno fires at once for a delay above 2^31 - 1 ms, so a
      // longer timeout would expire immediately rather than never.
      if (ms > MAX_TIMER_MS) {
        addIssue({ message: `${describeValue(raw)} is more than the maximum of ${formatDuration(MAX_TIMER_MS)}, the longest timer runtimes allow` });
        return NEVER;
      }
      return ms;
    }),
  );
}

/** A whole number within [min, max]. */
export function intField(min: number, max: number = Number.MAX_SAFE_INTEGER) {
  return v.pipe(
    v.number((issue) => `expected a whole number but got ${describeValue(issue.input)}`),
    v.check((n) => Number.isInteger(n), (issue) => `expected a whole number but got ${describeValue(issue.input)}`),
    v.check((n) => n >= min, (issue) => `${describeValue(issue.input)} is less than the minimum of ${min}`),
    v.check((n) => n <= max, (issue) => `${describeValue(issue.input)} is more than the maximum of ${max}`),
  );
}

/** One of a fixed set of strings; the message names the value, what it should be, and a likely fix. */
export function oneOf<const T extends readonly [string, ...string[]]>(options: T, what: string) {
  return v.picklist(options, (issue) => {
    const input = issue.input;
    const hint = typeof input === "string" ? suggest(input, options) : undefined;
    return hint === undefined
      ? `${describeValue(input)} is not ${what}, expected one of ${options.join(", ")}`
      : `${describeValue(input)} is not ${what}, did you mean "${hint}"?`;
  });
}
