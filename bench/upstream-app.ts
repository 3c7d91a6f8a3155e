// The benchmark's upstream: a plain HTTP server answering every request with 1 KiB.
// Runs as its own process so it never shares an event loop with the load generator.
//
//   node bench/upstream-app.ts [PORT] [--reset-every N]
//
// --reset-every N makes it a flapping endpoint (B1 of the reference scenario): every Nth
// request has its connection reset instead of an answer. SIGUSR2 switches the flapping on
// and off, so one process serves both the healthy and the flapping measurement.

import { createServer } from "node:http";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({ allowPositionals: true, options: { "reset-every": { type: "string" }, healthy: { type: "boolean" } } });
const resetEvery = Number(values["reset-every"] ?? 0);
let flapping = resetEvery > 0 && !values.healthy;
let seen = 0;

const body = Buffer.alloc(1024, "x");
const server = createServer((req, res) => {
  if (flapping && ++seen % resetEvery === 0) return void req.socket.resetAndDestroy();
  req.resume();
  req.on("end", () => res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(positionals[0] ?? 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: `127.0.0.1:${(server.address() as { port: number }).port}`, resetEvery, flapping }));
});
process.on("SIGUSR2", () => {
  flapping = resetEvery > 0 && !flapping;
  console.log(JSON.stringify({ flapping }));
});
process.on("SIGTERM", () => (server.closeAllConnections(), server.close(() => process.exit(0))));
