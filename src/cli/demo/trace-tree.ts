// One trace as a tree for people: each span under its parent, with who exported it, what
// it was (the hop, an attempt, the callee's inbound), its outcome, start offset and duration.

import type { CollectedSpan } from "./collector.ts";

export type AddressLabel = (address: string) => string;

export function traceTree(spans: readonly CollectedSpan[], label: AddressLabel): string[] {
  const ids = new Set(spans.map((s) => s.spanId));
  const children = new Map<string | undefined, CollectedSpan[]>();
  for (const s of [...spans].sort((a, b) => a.startMs - b.startMs)) {
    // A span whose parent was not exported (the app's, or a sidecar without tracing) is a root here.
    const parent = s.parentSpanId && ids.has(s.parentSpanId) ? s.parentSpanId : undefined;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  const origin = Math.min(...spans.map((s) => s.startMs));
  const lines: string[] = [];
  const walk = (s: CollectedSpan, prefix: string, last: boolean, root: boolean) => {
    const branch = root ? "" : last ? "└─ " : "├─ ";
    const timing = `+${(s.startMs - origin).toFixed(1)} ms, ${(s.endMs - s.startMs).toFixed(1)} ms`;
    lines.push(`${prefix}${branch}${describeSpan(s, label)}  [${timing}]`);
    const kids = children.get(s.spanId) ?? [];
    const next = root ? prefix : prefix + (last ? "   " : "│  ");
    kids.forEach((k, i) => walk(k, next, i === kids.length - 1, false));
  };
  for (const r of children.get(undefined) ?? []) walk(r, "", true, true);
  return lines;
}

export function describeSpan(s: CollectedSpan, label: AddressLabel): string {
  const a = s.attributes;
  const status = a["http.response.status_code"];
  const outcome = a["error.type"] !== undefined ? `✗ ${a["error.type"]}` : status === undefined ? "✗ no response" : `${status}${s.status.code === 2 ? " ✗" : " ✓"}`;
  const peer = typeof a["remora.peer.spiffe_id"] === "string" ? a["remora.peer.spiffe_id"] : undefined;
  if (s.kind === 3 && a["remora.attempt"] !== undefined) {
    const endpoint = `${a["server.address"]}:${a["server.port"]}`;
    return `${s.service} sidecar: attempt ${a["remora.attempt"]} to ${label(endpoint)} -> ${outcome}${peer ? `, peer ${peer}` : ""}`;
  }
  if (s.kind === 2) {
    const app = typeof a["remora.upstream"] === "string" ? ` to ${label(a["remora.upstream"])}` : "";
    return `${s.service} sidecar: inbound ${s.name}${app} -> ${outcome}${peer ? `, caller ${peer}${a["remora.mtls"] ? " over mTLS" : ""}` : ""}`;
  }
  const attempts = a["remora.attempts"] !== undefined ? `, ${a["remora.attempts"]} attempt(s)` : "";
  return `${s.service} sidecar: outbound ${s.name} -> ${outcome}${attempts}`;
}
