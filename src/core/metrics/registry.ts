// A small metrics registry: counters, gauges and histograms with fixed label names,
// rendered as Prometheus text (0.0.4) for /metrics and as a JSON snapshot for tools.

import {
  escapeHelp,
  formatFloat,
  formatLabels,
  LABEL_NAME,
  METRIC_NAME,
} from "./exposition.ts";

export { CONTENT_TYPE } from "./exposition.ts";

/** Label values keyed by the family's label names. */
export type Labels<L extends string> = Readonly<Record<L, string>>;

export type MetricType = "counter" | "gauge" | "histogram";

export interface MetricOptions<L extends string> {
  name: string;
  help: string;
  labelNames?: readonly L[];
}

export interface HistogramOptions<L extends string> extends MetricOptions<L> {
  /** Upper bounds, increasing; +Inf is implicit. Default DEFAULT_LATENCY_BUCKETS. */
  buckets?: readonly number[];
}

/**
 * Latency buckets in seconds for a proxy hop: from 0.5 ms (a pooled loopback call) to
 * 10 s (near the default 15 s route timeout).
 */
export const DEFAULT_LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** A histogram's state: cumulative counts per finite upper bound, plus total count and sum. */
export interface HistogramSnapshot {
  /** Cumulative, increasing `le`; the +Inf bucket is `count`. */
  buckets: { le: number; count: number }[];
  count: number;
  sum: number;
}

export type MetricSnapshot =
  | { name: string; help: string; type: "counter" | "gauge"; series: { labels: Record<string, string>; value: number }[] }
  | { name: string; help: string; type: "histogram"; series: ({ labels: Record<string, string> } & HistogramSnapshot)[] };

interface Series<S> {
  values: string[];
  state: S;
}
type Level = Map<string, Level | Series<unknown>>;

abstract class Family<L extends string, S> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  abstract readonly type: MetricType;
  protected readonly series = new Map<string, Series<S>>();
  /** The same series by label value, one Map per label name in order; the last level holds the series. */
  private readonly index: Level = new Map();

  constructor(options: MetricOptions<L>) {
    if (!METRIC_NAME.test(options.name)) throw new TypeError(`"${options.name}" is not a valid Prometheus metric name`);
    for (const l of options.labelNames ?? []) {
      if (!LABEL_NAME.test(l) || l.startsWith("__")) throw new TypeError(`${options.name}: "${l}" is not a valid label name`);
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = [...(options.labelNames ?? [])];
  }

  protected abstract initial(): S;

  /** The series for these labels, created on first use. Wrong label names are a programming error. */
  protected at(labels: Labels<L> | undefined): S {
    // On every request's path, so nothing is allocated once the series exists: the label
    // values are looked up level by level in `index` instead of joined into a key string
    // (two or three strings per update; issue 8).
    const given = labels ?? ({} as Labels<L>);
    const names = this.labelNames;
    let count = 0;
    for (const _ in given) count++; // Object.keys would allocate an array per update
    if (count !== names.length) this.wrongLabels(given);
    let level = this.index;
    for (let i = 0; i + 1 < names.length; i++) {
      const v = given[names[i]!];
      if (typeof v !== "string") this.wrongLabels(given);
      let next = level.get(v) as Level | undefined;
      if (next === undefined) level.set(v, (next = new Map()));
      level = next;
    }
    const last = names.length === 0 ? "" : given[names[names.length - 1]!];
    if (typeof last !== "string") this.wrongLabels(given);
    let s = level.get(last) as Series<S> | undefined;
    if (s === undefined) {
      const values = names.map((n) => given[n]);
      s = { values, state: this.initial() };
      this.series.set(values.join("\u0000"), s);
      level.set(last, s);
    }
    return s.state;
  }

  private wrongLabels(given: object): never {
    throw new TypeError(`${this.name} takes labels {${this.labelNames.join(",")}}, got {${Object.keys(given).join(",")}}`);
  }

  /** Forgets one series (e.g. of an endpoint that left), so it is no longer exposed. */
  remove(labels: Labels<L>): void {
    const values = this.labelNames.map((n) => labels[n]);
    this.series.delete(values.join("\u0000"));
    let level: Level | undefined = this.index;
    for (let i = 0; level !== undefined && i + 1 < values.length; i++) level = level.get(values[i]!) as Level | undefined;
    level?.delete(values.length === 0 ? "" : values[values.length - 1]!);
  }

  /** Series sorted by label values, so successive scrapes read the same. */
  protected sorted(): { values: string[]; state: S }[] {
    // A family without labels has exactly one series, shown from the start (at zero).
    if (this.labelNames.length === 0 && this.series.size === 0) this.at(undefined);
    return [...this.series.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
  }

  protected labelsOf(values: readonly string[]): Record<string, string> {
    return Object.fromEntries(this.labelNames.map((n, i) => [n, values[i] ?? ""]));
  }

  /** The family's lines, HELP and TYPE first, each line ending in "\n". */
  expose(): string {
    let out = `# HELP ${this.name} ${escapeHelp(this.help)}\n# TYPE ${this.name} ${this.type}\n`;
    for (const s of this.sorted()) out += this.lines(s.values, s.state);
    return out;
  }

  protected abstract lines(values: readonly string[], state: S): string;
  abstract snapshot(): MetricSnapshot;
}

abstract class ScalarFamily<L extends string> extends Family<L, { value: number }> {
  protected initial(): { value: number } {
    return { value: 0 };
  }

  /** Current value; 0 for a series never touched. */
  get(labels?: Labels<L>): number {
    return this.at(labels).value;
  }

  protected lines(values: readonly string[], state: { value: number }): string {
    return `${this.name}${formatLabels(this.labelNames, values)} ${formatFloat(state.value)}\n`;
  }

  snapshot(): MetricSnapshot {
    return {
      name: this.name,
      help: this.help,
      type: this.type as "counter" | "gauge",
      series: this.sorted().map((s) => ({ labels: this.labelsOf(s.values), value: s.state.value })),
    };
  }
}

/** Only goes up (Prometheus counter semantics); name it `..._total`. */
export class Counter<L extends string = never> extends ScalarFamily<L> {
  readonly type = "counter";

  inc(labels?: Labels<L>, by = 1): void {
    if (!(by >= 0)) throw new TypeError(`${this.name}: a counter cannot be increased by ${by}`);
    this.at(labels).value += by;
  }
}

export class Gauge<L extends string = never> extends ScalarFamily<L> {
  readonly type = "gauge";

  set(labels: Labels<L> | undefined, value: number): void {
    this.at(labels).value = value;
  }

  inc(labels?: Labels<L>, by = 1): void {
    this.at(labels).value += by;
  }

  dec(labels?: Labels<L>, by = 1): void {
    this.at(labels).value -= by;
  }
}

interface HistogramState {
  /** Non-cumulative counts per finite bucket; observations above the last bound only add to count. */
  counts: number[];
  count: number;
  sum: number;
}

export class Histogram<L extends string = never> extends Family<L, HistogramState> {
  readonly type = "histogram";
  readonly buckets: readonly number[];

  constructor(options: HistogramOptions<L>) {
    const buckets = [...(options.buckets ?? DEFAULT_LATENCY_BUCKETS)].filter((b) => b !== Infinity);
    if (buckets.some((b, i) => !Number.isFinite(b) || (i > 0 && b <= (buckets[i - 1] ?? -Infinity)))) {
      throw new TypeError(`${options.name}: histogram buckets must be finite and strictly increasing`);
    }
    if ((options.labelNames ?? []).some((l) => l === "le")) throw new TypeError(`${options.name}: "le" is reserved in histograms`);
    super(options);
    this.buckets = buckets;
  }

  protected initial(): HistogramState {
    return { counts: new Array<number>(this.buckets.length).fill(0), count: 0, sum: 0 };
  }

  /** Records one observation (seconds, for latency). NaN is ignored so one bad value cannot poison the sum. */
  observe(labels: Labels<L> | undefined, value: number): void {
    if (Number.isNaN(value)) return;
    const s = this.at(labels);
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) {
        s.counts[i] = (s.counts[i] ?? 0) + 1;
        break;
      }
    }
    s.count += 1;
    s.sum += value;
  }

  /** The series' state, cumulative; all zero for a series never observed. */
  get(labels?: Labels<L>): HistogramSnapshot {
    return this.cumulative(this.at(labels));
  }

  private cumulative(s: HistogramState): HistogramSnapshot {
    let running = 0;
    const buckets = this.buckets.map((le, i) => {
      running += s.counts[i] ?? 0;
      return { le, count: running };
    });
    return { buckets, count: s.count, sum: s.sum };
  }

  protected lines(values: readonly string[], state: HistogramState): string {
    const h = this.cumulative(state);
    const names = [...this.labelNames, "le"];
    let out = "";
    for (const b of h.buckets) out += `${this.name}_bucket${formatLabels(names, [...values, formatFloat(b.le)])} ${formatFloat(b.count)}\n`;
    out += `${this.name}_bucket${formatLabels(names, [...values, "+Inf"])} ${formatFloat(h.count)}\n`;
    const labels = formatLabels(this.labelNames, values);
    out += `${this.name}_sum${labels} ${formatFloat(h.sum)}\n`;
    out += `${this.name}_count${labels} ${formatFloat(h.count)}\n`;
    return out;
  }

  snapshot(): MetricSnapshot {
    return {
      name: this.name,
      help: this.help,
      type: "histogram",
      series: this.sorted().map((s) => ({ labels: this.labelsOf(s.values), ...this.cumulative(s.state) })),
    };
  }
}

type AnyFamily = Counter<string> | Gauge<string> | Histogram<string>;

/** Holds metric families in registration order; one registry per sidecar. */
export class Registry {
  private readonly families = new Map<string, AnyFamily>();
  private readonly collectors: (() => void)[] = [];

  /**
   * Runs `collect` before every expose() and snapshot(), for gauges read at scrape time
   * (process memory) rather than kept up to date on the request path.
   */
  onCollect(collect: () => void): void {
    this.collectors.push(collect);
  }

  counter<L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.add(new Counter<L>(options));
  }

  gauge<L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.add(new Gauge<L>(options));
  }

  histogram<L extends string = never>(options: HistogramOptions<L>): Histogram<L> {
    return this.add(new Histogram<L>(options));
  }

  private add<F extends { name: string }>(family: F): F {
    // A histogram `x` also owns `x_bucket`, `x_sum` and `x_count`; a clash would make the scrape ambiguous.
    const owned = (f: { name: string; type: MetricType }) =>
      f.type === "histogram" ? [f.name, `${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`] : [f.name];
    const mine = owned(family as unknown as AnyFamily);
    for (const other of this.families.values()) {
      if (owned(other).some((n) => mine.includes(n))) throw new TypeError(`metric "${family.name}" clashes with "${other.name}"`);
    }
    this.families.set(family.name, family as unknown as AnyFamily);
    return family;
  }

  /** Prometheus text exposition 0.0.4 (serve it with CONTENT_TYPE); each family contiguous, ending in "\n". */
  expose(): string {
    for (const collect of this.collectors) collect();
    let out = "";
    for (const f of this.families.values()) out += f.expose();
    return out;
  }

  /** Every family and series as plain data, JSON-serialisable (the +Inf bucket is `count`). */
  snapshot(): MetricSnapshot[] {
    for (const collect of this.collectors) collect();
    return [...this.families.values()].map((f) => f.snapshot());
  }
}
