// Reads Prometheus text exposition 0.0.4 (what every sidecar's admin `/metrics` serves)
// back into families and samples, so the control plane can aggregate a mesh's metrics
// (prometheus/docs content/docs/instrumenting/exposition_formats.md).

import { RemoraError } from "../errors.ts";
import { LABEL_NAME, METRIC_NAME } from "./exposition.ts";
import type { HistogramSnapshot } from "./registry.ts";

export type FamilyType = "counter" | "gauge" | "histogram" | "summary" | "untyped";

export interface Sample {
  /** The sample's own name: `x_bucket`, `x_sum`, `x_count` for a histogram `x`. */
  name: string;
  labels: Record<string, string>;
  value: number;
  /** Milliseconds since the epoch, when the line carried one. */
  timestampMs?: number;
}

export interface ParsedFamily {
  name: string;
  type: FamilyType;
  help: string;
  samples: Sample[];
}

const TYPES: ReadonlySet<string> = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

/**
 * Parses one scrape into its families, keyed by family name, in the order they appear.
 * Samples of a histogram or summary `x` (`x_bucket`, `x_sum`, `x_count`) land in family
 * `x` once `# TYPE x` declared it; a sample with no TYPE forms an untyped family of its
 * own. Throws RemoraError(ERR_METRICS) naming `source` and the line on malformed input.
 */
export function parseExposition(text: string, source = "metrics"): Map<string, ParsedFamily> {
  const families = new Map<string, ParsedFamily>();
  const family = (name: string): ParsedFamily => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: "untyped", help: "", samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/\r$/, "").trim();
    if (line === "") continue;
    const fail = (why: string): never => {
      throw new RemoraError("ERR_METRICS", `${source} line ${i + 1}: ${why} in "${line.length > 80 ? `${line.slice(0, 77)}...` : line}".`);
    };
    if (line.startsWith("#")) {
      const m = /^#\s*(HELP|TYPE)\s+(\S+)(?:[ \t]+(.*))?$/.exec(line);
      if (m === null) continue; // an ordinary comment
      const [, keyword, name = "", rest = ""] = m;
      if (!METRIC_NAME.test(name)) fail(`"${name}" is not a metric name`);
      if (keyword === "HELP") family(name).help = unescapeHelp(rest);
      else {
        const type = rest.trim();
        if (!TYPES.has(type)) fail(`"${type}" is not a metric type`);
        const f = family(name);
        if (f.samples.length > 0) fail(`TYPE for ${name} comes after its samples`);
        f.type = type as FamilyType;
      }
      continue;
    }
    const sample = parseSample(line, fail);
    family(familyOf(sample.name, families)).samples.push(sample);
  }
  return families;
}

/** The family a sample belongs to: `x` for `x_bucket`/`x_sum`/`x_count` of a declared histogram or summary. */
function familyOf(sample: string, families: ReadonlyMap<string, ParsedFamily>): string {
  const m = /^(.*)_(bucket|sum|count)$/.exec(sample);
  if (m !== null) {
    const base = families.get(m[1] ?? "");
    if (base?.type === "histogram") return base.name;
    if (base?.type === "summary" && m[2] !== "bucket") return base.name;
  }
  return sample;
}

function parseSample(line: string, fail: (why: string) => never): Sample {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
  if (nameMatch === null) fail("a sample must start with a metric name");
  const name = nameMatch[0];
  let at = name.length;
  const labels: Record<string, string> = {};
  if (line[at] === "{") {
    at++;
    for (;;) {
      while (line[at] === " " || line[at] === "\t") at++;
      if (line[at] === "}") {
        at++;
        break;
      }
      const label = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(at));
      if (label === null || !LABEL_NAME.test(label[0])) fail("expected a label name");
      at += label[0].length;
      while (line[at] === " " || line[at] === "\t") at++;
      if (line[at] !== "=" || line[at + 1] !== '"') fail(`expected ="value" after label ${label[0]}`);
      at += 2;
      let value = "";
      for (;;) {
        const c = line[at];
        if (c === undefined) fail(`unterminated value of label ${label[0]}`);
        at++;
        if (c === '"') break;
        if (c === "\\") {
          const e = line[at++];
          value += e === "n" ? "\n" : e === "\\" ? "\\" : e === '"' ? '"' : fail(`unknown escape \\${e ?? ""} in label ${label[0]}`);
        } else value += c;
      }
      if (label[0] in labels) fail(`label ${label[0]} appears twice`);
      labels[label[0]] = value;
      while (line[at] === " " || line[at] === "\t") at++;
      // A trailing comma before "}" is tolerated, as the format allows.
      if (line[at] === ",") at++;
      else if (line[at] !== "}") fail(`expected "," or "}" after label ${label[0]}`);
    }
  }
  const rest = line.slice(at).trim().split(/[ \t]+/);
  if (line[at] !== " " && line[at] !== "\t") fail("expected a space before the value");
  const [valueText = "", tsText, extra] = rest;
  if (extra !== undefined) fail("too many fields");
  const value = parseValue(valueText);
  if (value === undefined) fail(`"${valueText}" is not a number`);
  const sample: Sample = { name, labels, value };
  if (tsText !== undefined) {
    if (!/^-?\d+$/.test(tsText)) fail(`"${tsText}" is not a timestamp in milliseconds`);
    sample.timestampMs = Number(tsText);
  }
  return sample;
}

/** Go's ParseFloat as Prometheus uses it: decimals, exponents, NaN and ±Inf in any case. */
function parseValue(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (lower === "nan") return NaN;
  if (lower === "+inf" || lower === "inf") return Infinity;
  if (lower === "-inf") return -Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) return undefined;
  return Number(text);
}

function unescapeHelp(text: string): string {
  return text.replace(/\\(\\|n)/g, (_, c: string) => (c === "n" ? "\n" : "\\"));
}

/** One histogram series: its labels (without `le`) and its cumulative buckets. */
export type HistogramSeries = { labels: Record<string, string> } & HistogramSnapshot;

/**
 * The series of a histogram family as snapshots, grouped by labels other than `le`;
 * the `+Inf` bucket becomes `count` (when `_count` is missing) and is not a finite bucket.
 */
export function histogramSeries(f: ParsedFamily): HistogramSeries[] {
  const byKey = new Map<string, HistogramSeries & { inf?: number; hasCount: boolean }>();
  for (const s of f.samples) {
    const { le, ...labels } = s.labels;
    const key = labelKey(labels);
    let h = byKey.get(key);
    if (h === undefined) {
      h = { labels, buckets: [], count: 0, sum: 0, hasCount: false };
      byKey.set(key, h);
    }
    if (s.name === `${f.name}_bucket`) {
      const bound = le === undefined ? undefined : parseValue(le);
      if (bound === undefined) continue;
      if (bound === Infinity) h.inf = s.value;
      else h.buckets.push({ le: bound, count: s.value });
    } else if (s.name === `${f.name}_sum`) h.sum = s.value;
    else if (s.name === `${f.name}_count`) {
      h.count = s.value;
      h.hasCount = true;
    }
  }
  return [...byKey.values()].map(({ inf, hasCount, ...h }) => ({
    ...h,
    buckets: h.buckets.sort((a, b) => a.le - b.le),
    count: hasCount ? h.count : (inf ?? 0),
  }));
}

/** A stable key for a label set, independent of label order. */
export function labelKey(labels: Readonly<Record<string, string>>): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(",");
}
