#!/usr/bin/env node
// Launcher for the `remora` command: runs the TypeScript sources directly (Node >= 22.18
// strips types natively; Bun and Deno run TypeScript). On an older Node it re-executes
// itself with the Node pinned in this package's devDependencies, so `npx remora` works
// on machines whose system Node is past its end of life.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const isNode = !globalThis.Bun && !globalThis.Deno;
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
const stripsTypes = major > 22 || (major === 22 && minor >= 18);

if (isNode && !stripsTypes) {
  const pinned = fileURLToPath(new URL("../node_modules/node/bin/node", import.meta.url));
  if (!existsSync(pinned)) {
    console.error(`remora needs Node >= 22.18 (this is ${process.version}); run \`npm ci\` to install the pinned Node, or use Bun or Deno.`);
    process.exit(1);
  }
  const r = spawnSync(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  process.exit(r.status ?? 1);
} else {
  await import("../src/cli/main.ts");
}
