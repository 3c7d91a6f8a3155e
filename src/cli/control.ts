// `remora control`: the control plane (CA, join tokens, config service, registry, admin
// API) serving docs/control-api.md over TLS, its state in --data DIR, or shared by several
// replicas in PostgreSQL with --store postgres://… (docs/ha.md).

import { createLogger } from "./log.ts";
import { parseDuration } from "../core/duration.ts";
import { RemoraError } from "../core/errors.ts";
import { startControlServer } from "../control/server.ts";
import { parseServiceCidr } from "../control/services.ts";
import { loadStoreKey, STORE_KEY_ENV } from "../control/pg/store-key.ts";
import { parse, UsageError } from "./args.ts";

const usage = `Usage: remora control --data DIR [options]

  --data DIR            state directory (created 0700): root CA, token key, admin token, state.json
  --listen ADDR         host:port to serve the control API on (default 127.0.0.1:15010)
  --trust-domain TD     SPIFFE trust domain (default cluster.local)
  --cert-ttl DURATION   lifetime of issued SVIDs, e.g. 24h, 2m (default 24h)
  --lapse DURATION      drop a proxy after this long without a heartbeat (default 15s)
  --service-cidr CIDR   range service virtual IPs are assigned from (default 240.240.0.0/16)
  --store URL           postgres://user:password@host:port/db: state, registry and CA shared by
                        every replica on that database (default: the file store in --data DIR;
                        with a database, DIR only receives root.pem and admin-token for the CLI)
  --store-key-file FILE 32-byte key (base64 or hex) encrypting the CA and token keys in the
                        database (or env ${STORE_KEY_ENV}); the same on every replica`;

export async function controlCommand(argv: string[]): Promise<number> {
  const { values } = parse("control", argv, {
    data: { type: "string" },
    listen: { type: "string", default: "127.0.0.1:15010" },
    "trust-domain": { type: "string", default: "cluster.local" },
    "cert-ttl": { type: "string", default: "24h" },
    lapse: { type: "string", default: "15s" },
    "service-cidr": { type: "string" },
    store: { type: "string" },
    "store-key-file": { type: "string" },
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
  if (values["service-cidr"] !== undefined) {
    try {
      parseServiceCidr(values["service-cidr"]);
    } catch (e) {
      throw new UsageError(`remora control: ${(e as Error).message.replace(/\.$/, "")}`);
    }
  }

  if (values["store-key-file"] !== undefined && values.store === undefined) {
    throw new UsageError("remora control: --store-key-file only applies with --store postgres://…; the file store keeps its keys in --data DIR");
  }

  const logger = createLogger({ service: "remora-control" });
  let server;
  try {
    const shared =
      values.store === undefined
        ? {}
        : { storeUrl: values.store, storeKey: await loadStoreKey({ ...(values["store-key-file"] === undefined ? {} : { file: values["store-key-file"] }), ...(process.env[STORE_KEY_ENV] === undefined ? {} : { env: process.env[STORE_KEY_ENV] }) }) };
    server = await startControlServer({ ...shared, dataDir: values.data, listen: values.listen, trustDomain: values["trust-domain"], certTtlMs, lapseMs, logger, ...(values["service-cidr"] === undefined ? {} : { serviceCidr: values["service-cidr"] }) });
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
