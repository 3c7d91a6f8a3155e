// The native-proxy peer: an HAProxy pair set up like the remora pair. The client-side
// HAProxy takes plain HTTP and originates mTLS with the orders SVID; the server-side one
// terminates mTLS (client certificate required, verified against the mesh root) and
// forwards to the app. Keep-alive and connection reuse on both hops, retries off.
//
// SVIDs carry only a URI SAN. HAProxy checks a server certificate's host name only when
// `verifyhost` or `sni` is set; with neither, `verify required` checks the chain alone,
// which is what works here. HAProxy cannot match a SPIFFE ID in the URI SAN on its own, so
// it does less per connection than remora (which checks the peer's SPIFFE ID both ways).

import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { freePort, startProcess } from "../support/processes.ts";
import type { BenchEnv, PathHandle } from "./path.ts";

async function combinedPem(env: BenchEnv, service: string): Promise<string> {
  // HAProxy wants the certificate and its key in one file.
  const file = join(env.dir, `${service}-haproxy.pem`);
  await writeFile(file, (await readFile(join(env.certs, `${service}.pem`), "utf8")) + (await readFile(join(env.certs, `${service}-key.pem`), "utf8")), { mode: 0o600 });
  return file;
}

const GLOBAL = `global
  # One thread per proxy process, like one remora event loop; CPU is measured per process.
  nbthread 1
  maxconn 4096

defaults
  mode http
  timeout connect 5s
  timeout client 65s
  timeout server 65s
  timeout http-keep-alive 65s
  option http-keep-alive
  http-reuse always
  retries 0
`;

export async function startHaproxyPair(env: BenchEnv, version: string): Promise<PathHandle> {
  const root = join(env.certs, "root.pem");
  const [clientPort, serverPort] = [await freePort(), await freePort()];
  const serverCfg = join(env.dir, "haproxy-server.cfg");
  await writeFile(
    serverCfg,
    `${GLOBAL}
frontend mesh_in
  bind 127.0.0.1:${serverPort} ssl crt ${await combinedPem(env, "payments")} ca-file ${root} verify required
  default_backend app

backend app
  server app ${env.app}
`,
  );
  const clientCfg = join(env.dir, "haproxy-client.cfg");
  await writeFile(
    clientCfg,
    `${GLOBAL}
frontend app_out
  bind 127.0.0.1:${clientPort}
  default_backend payments

backend payments
  server payments 127.0.0.1:${serverPort} ssl crt ${await combinedPem(env, "orders")} ca-file ${root} verify required
`,
  );
  const server = await startProcess({
    name: "haproxy-server",
    command: "haproxy",
    args: ["-db", "-f", serverCfg],
    logFile: join(env.dir, "haproxy-server.log"),
    ready: { connect: `127.0.0.1:${serverPort}` },
  });
  const client = await startProcess({
    name: "haproxy-client",
    command: "haproxy",
    args: ["-db", "-f", clientCfg],
    logFile: join(env.dir, "haproxy-client.log"),
    ready: { connect: `127.0.0.1:${clientPort}` },
  });
  const proxies = [client, server];
  return {
    name: "haproxy",
    kind: "haproxy",
    runtime: `HAProxy ${version}`,
    entry: `127.0.0.1:${clientPort}`,
    host: "payments",
    proxies,
    tlsServer: { address: `127.0.0.1:${serverPort}`, process: server },
    idleRssMiB: proxies.map((p) => p.stats().rssMiB),
    stop: async () => void (await Promise.all(proxies.map((p) => p.stop()))),
  };
}
