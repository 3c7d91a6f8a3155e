// HTTP/1.1 between sidecars on the multiplexed HTTP/2 connection (`mesh_protocol: h2`): a
// burst of app connections through orders becomes streams on ONE mTLS connection to the
// payments sidecar, and payments' app still sees plain HTTP/1.1 without remora's marks.
// The same burst with the default (http1) opens a connection, and a handshake, per
// concurrent request: the contrast that shows the count is not a given.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { http, remora, startProxy, type Proxy } from "./support/processes.ts";

const PAYMENTS_ID = "spiffe://cluster.local/ns/default/sa/payments";
const BURST = 20;

let dir: string;
const cleanup: (() => Promise<void>)[] = [];
const seen: { version: string; headers: IncomingHttpHeaders; body: string }[] = [];

async function proxy(name: string, text: string): Promise<Proxy> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, text);
  const p = await startProxy(path);
  cleanup.push(() => p.stop());
  return p;
}

function config(svc: string, extra: string): string {
  return `identity: { cert: certs/${svc}.pem, key: certs/${svc}-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
${extra}`.replaceAll("certs/", `${join(dir, "certs")}/`);
}

async function handshakes(p: Proxy): Promise<number> {
  const line = (await http(p.admin, "/metrics")).body.split("\n").find((l) => l.startsWith('remora_tls_handshakes_total{direction="outbound",result="success"}'));
  return line === undefined ? 0 : Number(line.split(" ").pop());
}

/** BURST POSTs at once, each on its own client connection, the app holding every answer until all arrived. */
async function burst(orders: Proxy): Promise<{ status: number; body: string }[]> {
  return Promise.all(Array.from({ length: BURST }, (_, i) =>
    http(orders.outbound, "/charge", { method: "POST", headers: { host: "payments", "content-type": "text/plain" }, body: `order-${i}` })));
}

describe("HTTP/1.1 between sidecars on one HTTP/2 connection (mesh_protocol: h2)", { timeout: 120_000 }, () => {
  let payments: Proxy;
  let waiting: (() => void)[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "remora-mesh-h2-"));
    const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "payments"]);
    assert.equal(r.code, 0, r.stderr);
    // Answers only once BURST requests are in, so every request of a burst is in flight at once.
    const app = createServer((req, res) => {
      let body = "";
      req.setEncoding("utf8");
      req.on("data", (c: string) => (body += c));
      req.on("end", () => {
        seen.push({ version: req.httpVersion, headers: req.headers, body });
        waiting.push(() => res.writeHead(200, { "content-type": "text/plain" }).end(`charged ${body}`));
        if (waiting.length === BURST) {
          for (const w of waiting) w();
          waiting = [];
        }
      });
    });
    await new Promise<void>((ok) => app.listen(0, "127.0.0.1", ok));
    cleanup.push(() => new Promise((ok) => app.close(() => ok())));
    const appAddress = `127.0.0.1:${(app.address() as AddressInfo).port}`;
    payments = await proxy("payments", config("payments", `inbound: { listen: "127.0.0.1:0", app: "${appAddress}", mode: STRICT }`));
  });

  after(async () => {
    for (const c of cleanup.reverse()) await c().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  const orders = (name: string, meshProtocol: string) => proxy(name, config("orders", `endpoints:
  payments:
    - { address: "${payments.inbound}", identity: ${PAYMENTS_ID} }
protocols: { mesh_protocol: ${meshProtocol} }`));

  test("a burst of app connections is one TLS handshake; the app sees HTTP/1.1 and no remora marks", async () => {
    const h2 = await orders("orders-h2", "h2");
    seen.length = 0;
    const replies = await burst(h2);
    assert.deepEqual(replies.map((r) => r.status), Array(BURST).fill(200));
    assert.deepEqual(new Set(replies.map((r) => r.body)), new Set(Array.from({ length: BURST }, (_, i) => `charged order-${i}`)));
    assert.equal(await handshakes(h2), 1, "one mTLS connection to the payments sidecar for the whole burst");
    assert.equal(seen.length, BURST);
    for (const s of seen) {
      assert.equal(s.version, "1.1");
      assert.deepEqual(Object.keys(s.headers).filter((h) => h.startsWith("remora-")), [], "remora's marks stop at the inbound sidecar");
      assert.match(String(s.headers["x-forwarded-client-cert"]), /URI=spiffe:\/\/cluster\.local\/ns\/default\/sa\/orders/);
    }
  });

  test("the default (http1) opens a connection per concurrent request for the same burst", async () => {
    const h1 = await orders("orders-h1", "http1");
    const replies = await burst(h1);
    assert.deepEqual(replies.map((r) => r.status), Array(BURST).fill(200));
    assert.ok((await handshakes(h1)) > 1, "HTTP/1.1 cannot share a connection between requests in flight");
  });
});
