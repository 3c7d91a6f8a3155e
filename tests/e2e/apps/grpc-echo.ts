// A plain gRPC server and client for the end-to-end pods (@grpc/grpc-js, no TLS, no remora):
//   PORT=50051 node tests/e2e/apps/grpc-echo.ts serve          answers Echo with the note and its replica
//   node tests/e2e/apps/grpc-echo.ts call TARGET NOTE [N]       N unary calls, prints each reply as JSON
// The client dials TARGET (e.g. `echo:50051`) as any app would; in a pod, redirection hands
// its h2c connection to the sidecar.

import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const PROTO = `syntax = "proto3";
package remora.e2e;
service Echo { rpc Echo (EchoRequest) returns (EchoReply); }
message EchoRequest { string note = 1; }
message EchoReply { string note = 1; string replica = 2; }
`;

const file = join(mkdtempSync(join(tmpdir(), "grpc-echo-")), "echo.proto");
writeFileSync(file, PROTO);
const def = protoLoader.loadSync(file, { keepCase: true });
const Echo = (grpc.loadPackageDefinition(def) as unknown as { remora: { e2e: { Echo: grpc.ServiceClientConstructor } } }).remora.e2e.Echo;

const [mode, target = "", note = "", count = "1"] = process.argv.slice(2);
if (mode === "serve") {
  const replica = process.env.REPLICA ?? "echo";
  const server = new grpc.Server();
  server.addService(Echo.service, {
    Echo(call: grpc.ServerUnaryCall<{ note: string }, unknown>, done: grpc.sendUnaryData<unknown>) {
      console.log(`call ${call.request.note}`);
      done(null, { note: call.request.note, replica });
    },
  });
  const port = Number(process.env.PORT ?? 50051);
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    console.log(`listening ${port} as ${replica}`);
  });
  process.on("SIGTERM", () => server.tryShutdown(() => process.exit(0)));
} else if (mode === "call") {
  const client = new Echo(target, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Echo(req: { note: string }, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: unknown) => void): void;
  };
  for (let i = 0; i < Number(count); i++) {
    const reply = await new Promise((ok, fail) => client.Echo({ note }, { deadline: Date.now() + 10_000 }, (err, r) => (err ? fail(err) : ok(r))));
    console.log(JSON.stringify(reply));
  }
  client.close();
} else {
  console.error("usage: grpc-echo.ts serve | call TARGET NOTE [N]");
  process.exit(2);
}
