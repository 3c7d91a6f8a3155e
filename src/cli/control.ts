// `remora control`: the control plane (CA, join tokens, config service, registry, admin
// API) serving docs/control-api.md over TLS, its state in --data DIR.

import pino from "pino";
import { parseDuration } from "../core/duration.ts";
import { RemoraError } from "../core/errors.ts";
import { startControlServer } from "../control/server.ts";
import { parse, UsageError } from "./args.ts";

const usage = `Usage: remora control --data DIR [options]

  --data DIR            state directory (created 0700): root CA, token key, admin token, state.json
  --listen ADDR         host:port to serve the control API on (default 127.0.0.1:15010)
  --trust-domain TD     SPIFFE trust domain (default cluster.local)
  --cert-ttl DURATION   lifetime of issued SVIDs, e.g. 24h, 2m (default 24h)
  --lapse DURATION      drop a proxy after this long without a heartbeat (default 15s)`;

export async function controlCommand(argv: string[]): Promise<number> {
  const { values } = parse("control", argv, {
    data: { type: "string" },
    listen: { type: "string", default: "127.0.0.1:15010" },
    "trust-domain": { type: "string", default: "cluster.local" },
    "cert-ttl": { type: "string", default: "24h" },
    lapse: { type: "string", default: "15s" },
    help: { type: "boolean" },
  });
  if (values.help) return console.log(usage), 0;
  if (!values.data) throw new UsageError("remora control: --data DIR is required; see remora control --help");
  const duration = (flag: string, text: string, min: number): number => {
    let ms: number;
    try {
      ms = parseDuration(text);
    } catch {
      throw new UsageError(`remora control: --${flag} "${text}" is not a duration (e.g. 24h, 90s)`);
    }
    if (ms < min) throw new UsageError(`remora control: --${flag} ${text} is below the minimum of ${min / 1000}s`);
    return ms;
  };
  // Ten seconds is already absurd in production; below it renewals (at half-life) would
  // outpace a slow control plane.
  const certTtlMs = duration("cert-ttl", values["cert-ttl"], 10_000);
  const lapseMs = duration("lapse", values.lapse, 1_000);

  const logger = pino({ base: { service: "remora-control" } });
  let server;
  try {
    server = await startControlServer({ dataDir: values.data, listen: values.listen, trustDomain: values["trust-domain"], certTtlMs, lapseMs, logger });
  } catch (e) {
    if (e instanceof RemoraError) logger.error({ code: e.code }, e.message);
    throw e;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "control plane stopping");
      void server.close().then(resolve, resolve);
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  return 0;
}
