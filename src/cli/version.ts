// `remora version`: remora's version, the runtime it is running on and the adapter in use.

import pkg from "../../package.json" with { type: "json" };
import { loadRuntime } from "../runtime/detect.ts";

export async function versionCommand(_argv: string[]): Promise<number> {
  const runtime = await loadRuntime();
  console.log(`remora ${pkg.version} (${runtime.name} ${runtime.version}, adapter ${runtime.adapter})`);
  return 0;
}
