// `remora delete policy DEST`: removes a destination's policy and authorization.

import { parse, UsageError } from "./args.ts";
import { controlFlags, controlHelp, withControl } from "./control-client.ts";

const usage = `Usage: remora delete policy DESTINATION

${controlHelp}`;

export async function deleteCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse("delete", argv, { help: { type: "boolean" }, ...controlFlags }, true);
  if (values.help) return console.log(usage), 0;
  const [kind, dest, ...extra] = positionals;
  if (kind !== "policy" || !dest || extra.length > 0) throw new UsageError("remora delete: expected `remora delete policy DESTINATION`");
  const res = (await withControl(values, (c) => c.request("DELETE", `/v1/policies/${encodeURIComponent(dest)}`))) as { version: string };
  console.log(`deleted policy ${dest} (config version ${res.version})`);
  return 0;
}
