// Picks the runtime adapter for the process we run in. The one place that sniffs the
// runtime; nothing on the request path does.

import type { Runtime } from "./types.ts";

interface RuntimeGlobals {
  Bun?: { version: string };
  Deno?: { version: { deno: string } };
}

export function detectRuntime(): Runtime["name"] {
  const g = globalThis as RuntimeGlobals;
  if (g.Bun !== undefined) return "bun";
  if (g.Deno !== undefined) return "deno";
  return "node";
}

export async function loadRuntime(): Promise<Runtime> {
  const { nodeRuntime } = await import("./node.ts");
  const g = globalThis as RuntimeGlobals;
  // No native Bun or Deno adapters yet. Both implement node:tls, node:http and node:https
  // well enough to run the node adapter (DESIGN.md, "Runtime facts"): Bun.serve cannot
  // show the caller's certificate and Deno's fetch rejects SVIDs without a DNS name, so
  // node: modules are the working path for now. (mTLS listeners use node:tls, not
  // node:https, because Bun 1.4's node:https server shows no peer certificate.)
  // name/version report the runtime actually running, not the adapter.
  switch (detectRuntime()) {
    case "bun":
      return { ...nodeRuntime, name: "bun", version: g.Bun!.version };
    case "deno":
      return { ...nodeRuntime, name: "deno", version: g.Deno!.version.deno };
    case "node":
      return nodeRuntime;
  }
}
