// The dashboard's stylesheet, inlined into the page (no CDN, no build step).

export const STYLE = `
:root { color-scheme: light; --good: #2e7d32; --warn: #b26a00; --bad: #c62828; --idle: #757575; --line: #d9dde3; --muted: #5f6670; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329; background: #f5f7fa; }
header { display: flex; align-items: center; gap: 16px; padding: 12px 24px; background: #0f2a3d; color: #fff; }
header h1 { font-size: 18px; margin: 0; font-weight: 600; letter-spacing: .3px; }
header .control { color: #b9c9d6; font-family: ui-monospace, monospace; font-size: 12px; }
header .spacer { flex: 1; }
header label { font-size: 13px; color: #dce6ee; }
header select { margin-left: 6px; font: inherit; }
header .updated { font-size: 12px; color: #b9c9d6; }
main { padding: 16px 24px 40px; display: grid; gap: 16px; grid-template-columns: minmax(0, 1fr); max-width: 1400px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
section h2 { font-size: 15px; margin: 0 0 8px; }
.error { background: #fdecea; color: var(--bad); border: 1px solid #f5c6c2; border-radius: 6px; padding: 8px 12px; }
.error:empty { display: none; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 10px 5px 0; border-bottom: 1px solid #eef0f3; white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .4px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { font-family: ui-monospace, monospace; font-size: 12px; white-space: normal; word-break: break-all; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; }
.good { color: var(--good); } .warn { color: var(--warn); } .bad { color: var(--bad); } .idle { color: var(--idle); }
.badge.good { background: var(--good); color: #fff; } .badge.warn { background: var(--warn); color: #fff; }
.badge.bad { background: var(--bad); color: #fff; } .badge.idle { background: var(--idle); color: #fff; }
.empty { color: var(--muted); font-style: italic; }
svg.topology { max-width: 100%; height: auto; display: block; }
svg.topology text { font-size: 13px; fill: #1d2329; }
svg.topology .node-sub { font-size: 11px; fill: var(--muted); }
svg.topology .edge-label { font-size: 11px; font-weight: 600; }
.legend { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin-top: 4px; }
.legend span::before { content: ""; display: inline-block; width: 18px; height: 3px; margin-right: 5px; vertical-align: middle; background: currentColor; }
svg.spark { display: block; }
.visually-hidden { position: absolute; left: -9999px; width: 1px; height: 1px; overflow: hidden; }
`;
