// Prometheus text exposition format 0.0.4: how names, label values, HELP text and
// numbers are written (prometheus/docs content/docs/instrumenting/exposition_formats.md).

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
export const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** HELP docstrings escape only backslash and newline. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Label values escape backslash, double quote and newline; other UTF-8 is literal. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** `{a="x",b="y"}`, or "" when there are no labels. */
export function formatLabels(names: readonly string[], values: readonly string[]): string {
  if (names.length === 0) return "";
  return `{${names.map((n, i) => `${n}="${escapeLabelValue(values[i] ?? "")}"`).join(",")}}`;
}

/**
 * A number as Go's strconv.FormatFloat(f, 'g', -1, 64) writes it, which is what
 * Prometheus's own clients emit (and what `le` labels must look like to match across
 * clients): shortest digits, exponent form below 1e-4 or from 1e6 up with at least
 * two exponent digits ("1e-05", "1.5e+06"), and "+Inf", "-Inf", "NaN".
 */
export function formatFloat(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  if (n === 0) return "0";
  const [mantissa = "", expText = "0"] = n.toExponential().split("e");
  const exp = Number(expText);
  if (exp < -4 || exp >= 6) {
    const digits = String(Math.abs(exp)).padStart(2, "0");
    return `${mantissa}e${exp < 0 ? "-" : "+"}${digits}`;
  }
  // In this range JavaScript's shortest round-trip form is already plain decimal.
  return String(n);
}
