// Summarises V8 heap snapshots (node --heapsnapshot-signal=SIGUSR2) by constructor: count and
// self size, and with two snapshots the growth between them, largest first. Used to tell a
// leak (some constructor's count grows with requests) from heap sizing.
//
//   node bench/support/heap-summary.ts A.heapsnapshot [B.heapsnapshot] [--top 25]

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

export interface ConstructorTotals { count: number; selfBytes: number }

export function summarise(file: string): Map<string, ConstructorTotals> {
  const snap = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const width = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const types = snap.snapshot.meta.node_types[0];
  const totals = new Map<string, ConstructorTotals>();
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + typeAt]!] ?? "?";
    // Objects by constructor name; strings, code, arrays etc. by their V8 node type.
    const key = type === "object" || type === "native" ? `${snap.strings[snap.nodes[i + nameAt]!]}` : `(${type})`;
    const t = totals.get(key) ?? { count: 0, selfBytes: 0 };
    t.count++;
    t.selfBytes += snap.nodes[i + sizeAt]!;
    totals.set(key, t);
  }
  return totals;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string", default: "25" } } });
  const top = Number(values.top);
  const [a, b] = positionals.map(summarise);
  if (!a) throw new Error("usage: heap-summary.ts A.heapsnapshot [B.heapsnapshot]");
  const total = (m: Map<string, ConstructorTotals>) => [...m.values()].reduce((s, t) => s + t.selfBytes, 0);
  const mib = (n: number) => (n / 2 ** 20).toFixed(2);
  if (!b) {
    console.log(`total self size ${mib(total(a))} MiB`);
    for (const [k, t] of [...a].sort((x, y) => y[1].selfBytes - x[1].selfBytes).slice(0, top)) console.log(`${mib(t.selfBytes).padStart(8)} MiB ${String(t.count).padStart(8)}  ${k}`);
  } else {
    console.log(`total self size ${mib(total(a))} -> ${mib(total(b))} MiB`);
    const keys = new Set([...a.keys(), ...b.keys()]);
    const rows = [...keys].map((k) => {
      const x = a.get(k) ?? { count: 0, selfBytes: 0 };
      const y = b.get(k) ?? { count: 0, selfBytes: 0 };
      return { k, dc: y.count - x.count, db: y.selfBytes - x.selfBytes, c: y.count };
    }).sort((p, q) => Math.abs(q.db) - Math.abs(p.db)).slice(0, top);
    console.log("   Δ bytes   Δ count    count  constructor");
    for (const r of rows) console.log(`${String(r.db).padStart(10)} ${String(r.dc).padStart(9)} ${String(r.c).padStart(8)}  ${r.k}`);
  }
}
