// A plain payments server for the end-to-end pods: knows nothing of remora. POST /charge
// answers with the replica's name; with MODE=reset it drops every connection instead (a
// flapping replica). Every request is logged on stdout, so the test can count them.
//   REPLICA=B2 PORT=8080 [MODE=reset] node tests/e2e/apps/payments.ts

import { createServer } from "node:http";

const replica = process.env.REPLICA ?? "payments";
const port = Number(process.env.PORT ?? 8080);
const reset = process.env.MODE === "reset";
let served = 0;

const server = createServer((req, res) => {
  served++;
  console.log(`request ${served} ${req.method} ${req.url} from ${req.socket.remoteAddress}`);
  if (reset) {
    req.socket.destroy();
    return;
  }
  req.resume();
  req.on("end", () => {
    if (req.method === "POST" && req.url === "/charge") res.writeHead(200, { "content-type": "text/plain" }).end(replica);
    else res.writeHead(404, { "content-type": "text/plain" }).end(`no ${req.method} ${req.url} here\n`);
  });
});

server.listen(port, "0.0.0.0", () => console.log(`listening ${port} as ${replica}${reset ? " (resetting every connection)" : ""}`));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
