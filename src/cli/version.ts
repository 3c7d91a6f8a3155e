// `remora version`: remora's version and the runtime it is running on.

import { createRequire } from "node:module";
import { loadRuntime } from "../runtime/detect.ts";

export async function versionCommand(_argv: string[]): Promise<number> {
  const pkg = createRequire(import.meta.url)("../../package.json") as { version: string };
  const runtime = await loadRuntime();
  console.log(`remora ${pkg.version} (${runtime.name} ${runtime.version})`);
  return 0;
}
