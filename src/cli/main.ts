// The `remora` command: dispatches to one module per subcommand and turns every error a
// user can cause into one sentence and a non-zero exit.

import { RemoraError } from "../core/errors.ts";
import { UsageError } from "./args.ts";

const help = `remora — a service mesh in TypeScript (Node, Bun, Deno)

Usage: remora <command> [options]

Commands:
  demo       run the reference scenario end to end on loopback and narrate it
  proxy      run a sidecar (--config FILE)
  run        run a sidecar and an app beside it: app starts once the sidecar is ready (-- COMMAND)
  certs      mint a development root CA and SPIFFE SVIDs
  control    run the control plane (CA, join tokens, config service, registry) (--data DIR)
  token      print a join token for a new sidecar (--service NAME)
  apply      send policy and authorization documents to the control plane (-f FILE)
  get        show policies, endpoints or proxies known to the control plane
  delete     remove a destination's policy (delete policy NAME)
  stat       golden metrics per service and per edge (success, RPS, latency, retries, mTLS)
  tap        stream a service's requests live (caller identity, status, latency)
  dashboard  serve a local web dashboard: topology, golden metrics, endpoints, proxies
  init       redirect this network namespace's TCP into the sidecar (iptables; --dry-run prints the rules)
  version    print remora's version and the runtime it runs on

Run \`remora <command> --help\` for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  proxy: async () => (await import("./proxy.ts")).proxyCommand,
  run: async () => (await import("./run.ts")).runCommand,
  certs: async () => (await import("./certs.ts")).certsCommand,
  demo: async () => (await import("./demo.ts")).demoCommand,
  version: async () => (await import("./version.ts")).versionCommand,
  control: async () => (await import("./control.ts")).controlCommand,
  token: async () => (await import("./token.ts")).tokenCommand,
  apply: async () => (await import("./apply.ts")).applyCommand,
  get: async () => (await import("./get.ts")).getCommand,
  delete: async () => (await import("./delete.ts")).deleteCommand,
  stat: async () => (await import("./stat.ts")).statCommand,
  tap: async () => (await import("./tap.ts")).tapCommand,
  dashboard: async () => (await import("./dashboard.ts")).dashboardCommand,
  init: async () => (await import("./init.ts")).initCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    console.log(help);
    return 0;
  }
  if (name === "--version" || name === "-v") return (await commands.version!())([]);
  const load = commands[name];
  if (!load) {
    console.error(`remora: unknown command "${name}"; commands are ${Object.keys(commands).join(", ")}`);
    return 2;
  }
  return (await load())(rest);
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError) {
    console.error(e.message);
    process.exitCode = 2;
  } else if (e instanceof RemoraError) {
    console.error(`remora: ${e.message}`);
    process.exitCode = 1;
  } else {
    console.error(`remora: unexpected error: ${(e as Error)?.stack ?? e}`);
    process.exitCode = 1;
  }
}
