// The Node runtime adapter: node:http/node:https listeners and an HTTP/1.1 upstream
// with mTLS and connection reuse. Bun and Deno can run it through their node: modules.

import process from "node:process";
import type { Runtime } from "./types.ts";
import { serve } from "./node/serve.ts";
import { createUpstream } from "./node/upstream.ts";

export type { NodeUpstreamOptions } from "./node/upstream.ts";

export const nodeRuntime: Runtime = {
  name: "node",
  version: process.versions.node,
  serve,
  createUpstream,
};
