// The Bun runtime adapter: the upstream on Bun.connect with Bun's native TLS and remora's own
// HTTP/1.1 client; listeners on Bun's node:http/node:tls, because Bun.serve loses absolute-form
// targets and hides the caller's certificate (docs/runtimes.md says why, with numbers).

import type { Runtime } from "./types.ts";
import { serve } from "./bun/serve.ts";
import { createUpstream } from "./bun/upstream.ts";
import { bunApi } from "./bun/bun-api.ts";

export const bunRuntime: Runtime = {
  name: "bun",
  get version() {
    return bunApi().version;
  },
  serve,
  createUpstream,
};
