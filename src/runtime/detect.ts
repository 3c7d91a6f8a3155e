// Picks the runtime adapter for the process we run in. The one place that sniffs the
// runtime; nothing on the request path does.

import type { Runtime } from "./types.ts";

export type RuntimeName = Runtime["name"];

export function detectRuntime(): RuntimeName {
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}

export async function loadRuntime(): Promise<Runtime> {
  switch (detectRuntime()) {
    // No native adapters yet. Bun and Deno both implement node:tls, node:http and
    // node:https well enough to run the node adapter (DESIGN.md, "Runtime facts"): Bun's
    // own Bun.serve cannot show the caller's certificate and Deno's fetch rejects SVIDs
    // without a DNS name, so node: modules are the working path on both for now.
    case "bun":
    case "deno":
    case "node":
      return (await import("./node.ts")).nodeRuntime;
  }
}
