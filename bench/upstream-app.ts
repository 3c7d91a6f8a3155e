// The benchmark's upstream: a plain HTTP server answering every request with 1 KiB.
// Runs as its own process so it never shares an event loop with the load generator.

import { createServer } from "node:http";

const body = Buffer.alloc(1024, "x");
const server = createServer((req, res) => {
  req.resume();
  req.on("end", () => res.writeHead(200, { "content-type": "application/octet-stream", "content-length": body.length }).end(body));
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  console.log(JSON.stringify({ listening: `127.0.0.1:${(server.address() as { port: number }).port}` }));
});
process.on("SIGTERM", () => server.close(() => process.exit(0)));
