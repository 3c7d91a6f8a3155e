// Argument parsing for every command: node:util's parseArgs (available on Node, Bun and
// Deno), with its errors turned into one sentence naming the command and flag.

import { parseArgs, type ParseArgsConfig } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse<O extends Options>(command: string, argv: string[], options: O, allowPositionals = false) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals });
  } catch (e) {
    const msg = (e as Error).message.replace(/\. To specify a positional argument.*$/s, "");
    throw new UsageError(`remora ${command}: ${msg.charAt(0).toLowerCase()}${msg.slice(1)}`);
  }
}
