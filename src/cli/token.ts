// `remora token`: asks the control plane for a join token that lets one new sidecar obtain
// the identity of one service (and no other).

import { parse, UsageError } from "./args.ts";
import { controlFlags, controlHelp, withControl } from "./control-client.ts";

const usage = `Usage: remora token --service NAME [--namespace default] [--ttl 1h]

Prints a join token for \`remora proxy --token\`.

${controlHelp}`;

export async function tokenCommand(argv: string[]): Promise<number> {
  const { values } = parse("token", argv, {
    service: { type: "string" },
    namespace: { type: "string", default: "default" },
    ttl: { type: "string", default: "1h" },
    help: { type: "boolean" },
    ...controlFlags,
  });
  if (values.help) return console.log(usage), 0;
  if (!values.service) throw new UsageError("remora token: --service NAME is required; see remora token --help");
  const body = { service: values.service, namespace: values.namespace, ttl: values.ttl };
  const res = (await withControl(values, (c) => c.request("POST", "/v1/tokens", { json: body }))) as { token: string; expires_at: string };
  console.log(res.token);
  console.error(`join token for ${values.namespace}/${values.service}, valid until ${res.expires_at}`);
  return 0;
}
