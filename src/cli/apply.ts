// `remora apply -f FILE`: sends policy and authorization documents (YAML) to the control
// plane, which validates them whole and pushes them to every sidecar.

import { basename } from "node:path";
import { parse, UsageError } from "./args.ts";
import { controlFlags, controlHelp, withControl } from "./control-client.ts";
import { readText } from "./files.ts";

const usage = `Usage: remora apply -f FILE

FILE holds one or more policy and/or authorization documents (YAML, separated by ---).
An invalid document is refused with its field path and nothing changes.

${controlHelp}`;

export async function applyCommand(argv: string[]): Promise<number> {
  const { values } = parse("apply", argv, { file: { type: "string", short: "f" }, help: { type: "boolean" }, ...controlFlags });
  if (values.help) return console.log(usage), 0;
  if (!values.file) throw new UsageError("remora apply: -f FILE is required; see remora apply --help");
  const text = await readText(values.file, "policy file");
  const path = `/v1/policies?source=${encodeURIComponent(basename(values.file))}`;
  const res = (await withControl(values, (c) => c.request("PUT", path, { text, contentType: "application/yaml" }))) as { applied: string[]; version: string };
  console.log(`applied ${res.applied.join(", ")} (config version ${res.version})`);
  return 0;
}
