// Issue 8 (idle RSS): the sidecar reads certificates with remora's own DER code. @peculiar/x509
// and the reflect-metadata and tsyringe it needs add ~18 MB to a Bun process, so no module the
// sidecar command loads at startup (static imports from src/cli/proxy.ts) may reach them.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const HEAVY = /^(@peculiar\/x509|reflect-metadata|tsyringe)(\/|$)|src\/core\/identity\/x509\.ts$/;

/** Every path `entry` reaches through static `import` statements, with the chain that reaches it. */
async function staticImports(entry: string): Promise<Map<string, string[]>> {
  const result = await build({
    entryPoints: [entry],
    absWorkingDir: ROOT,
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    format: "esm",
    packages: "external",
    logLevel: "silent",
  });
  const inputs = result.metafile.inputs;
  const reached = new Map<string, string[]>([[entry, [entry]]]);
  const queue = [entry];
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
    // Dynamic import() loads on demand (e.g. `remora control`), so only static edges count.
    for (const edge of inputs[file]?.imports ?? []) {
      if (edge.kind !== "import-statement" || reached.has(edge.path)) continue;
      reached.set(edge.path, [...reached.get(file)!, edge.path]);
      if (!edge.external) queue.push(edge.path);
    }
  }
  return reached;
}

describe("the sidecar's static import graph", () => {
  test("src/cli/proxy.ts reaches neither @peculiar/x509 nor reflect-metadata nor tsyringe", async () => {
    const reached = await staticImports("src/cli/proxy.ts");
    assert.ok(reached.has("src/core/identity/svid.ts"), "the walk reaches the certificate reader");
    const heavy = [...reached].filter(([path]) => HEAVY.test(path)).map(([, chain]) => chain.join(" -> "));
    assert.deepEqual(heavy, []);
  });

  test("the walk finds the library where it is imported (the control plane's CA)", async () => {
    const reached = await staticImports("src/core/identity/ca.ts");
    assert.ok(reached.has("@peculiar/x509") && reached.has("reflect-metadata"));
  });
});
