// Hand-written SVG for bench/results/added-latency.svg: one panel per offered rate, the
// latency each path adds over direct at p50, p90, p99 and p99.9 as grouped bars. A path
// that could not be measured at a rate gets a note instead of a bar.

export interface ChartSeries {
  path: string;
  /** Added ms per percentile, or a short reason why there is no number. */
  values: (number | string)[];
}

export interface ChartPanel {
  title: string;
  series: ChartSeries[];
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"];
const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The log axis runs from FLOOR (ms) to the first power of ten at or above the largest value. */
const FLOOR = 0.01;

export function addedLatencyChart(o: { title: string; subtitle: string; percentiles: string[]; panels: ChartPanel[] }): string {
  const panelW = 330;
  const panelH = 260;
  const left = 50;
  const top = 70;
  const gap = 55;
  const paths = [...new Set(o.panels.flatMap((p) => p.series.map((s) => s.path)))];
  const width = left + o.panels.length * (panelW + gap) + 10;
  const height = top + panelH + 90;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(o.title)}</text>`,
    `<text x="${left}" y="40" fill="#555">${esc(o.subtitle)}</text>`,
  ];
  o.panels.forEach((panel, pi) => {
    const x0 = left + pi * (panelW + gap);
    const numbers = panel.series.flatMap((s) => s.values.filter((v): v is number => typeof v === "number"));
    // Log scale: added latency spans 0.01 ms to seconds across paths and percentiles, and a
    // linear axis would flatten the small bars that matter most.
    const decades = Math.max(1, Math.ceil(Math.log10(Math.max(FLOOR * 10, ...numbers) / FLOOR)));
    const y = (v: number) => top + panelH - (Math.log10(Math.max(FLOOR, v) / FLOOR) / decades) * panelH;
    out.push(`<text x="${x0 + panelW / 2}" y="${top - 12}" text-anchor="middle" font-weight="bold">${esc(panel.title)}</text>`);
    for (let t = 0; t <= decades; t++) {
      const v = FLOOR * 10 ** t;
      out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
      out.push(`<text x="${x0 - 4}" y="${y(v) + 4}" text-anchor="end" fill="#555">${+v.toPrecision(2)}</text>`);
    }
    out.push(`<text x="${x0 - 36}" y="${top + panelH / 2}" transform="rotate(-90 ${x0 - 36} ${top + panelH / 2})" text-anchor="middle" fill="#555">added ms (log)</text>`);
    const groupW = panelW / o.percentiles.length;
    const barW = Math.min(18, (groupW - 10) / Math.max(1, panel.series.length));
    o.percentiles.forEach((label, qi) => {
      const gx = x0 + qi * groupW + (groupW - barW * panel.series.length) / 2;
      out.push(`<text x="${x0 + qi * groupW + groupW / 2}" y="${top + panelH + 16}" text-anchor="middle">${esc(label)}</text>`);
      panel.series.forEach((s, si) => {
        const v = s.values[qi];
        const bx = gx + si * barW;
        const color = COLORS[paths.indexOf(s.path) % COLORS.length];
        if (typeof v === "number") {
          const h = Math.max(1, top + panelH - y(v));
          out.push(`<rect x="${bx.toFixed(1)}" y="${(top + panelH - h).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}"><title>${esc(`${s.path} ${label}: +${v.toFixed(3)} ms`)}</title></rect>`);
        } else {
          out.push(`<text x="${(bx + barW / 2).toFixed(1)}" y="${top + panelH - 4}" transform="rotate(-90 ${(bx + barW / 2).toFixed(1)} ${top + panelH - 4})" fill="${color}" font-size="9">${esc(v ?? "")}</text>`);
        }
      });
    });
    out.push(`<line x1="${x0}" x2="${x0 + panelW}" y1="${top + panelH}" y2="${top + panelH}" stroke="#333"/>`);
  });
  paths.forEach((p, i) => {
    const lx = left + i * 150;
    out.push(`<rect x="${lx}" y="${top + panelH + 40}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 16}" y="${top + panelH + 50}">${esc(p)}</text>`);
  });
  out.push(`<text x="${left}" y="${top + panelH + 76}" fill="#555">${esc(`Log scale; added latency at or below ${FLOOR} ms (or negative: within noise) sits on the axis. Vertical text instead of a bar: the path did not sustain that rate (sat.) or the run was refused (invalid).`)}</text>`);
  out.push("</svg>");
  return out.join("\n") + "\n";
}
