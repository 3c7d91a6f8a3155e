// The Deno runtime adapter: plain listeners on Deno.serve; mTLS listeners and the mTLS
// upstream on Deno's node:tls, the only Deno TLS API that shows the peer's certificate
// (docs/runtimes.md says why each part is where it is).

import type { Runtime } from "./types.ts";
import { serve } from "./deno/serve.ts";
import { createUpstream } from "./deno/upstream.ts";
import { denoApi } from "./deno/deno-api.ts";

export const denoRuntime: Runtime = {
  name: "deno",
  get version() {
    return denoApi().version.deno;
  },
  serve,
  createUpstream,
};
