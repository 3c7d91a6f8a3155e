// gRPC end to end through two sidecars on loopback: a @grpc/grpc-js client speaking h2c to
// orders' outbound listener, one multiplexed h2 mTLS connection per payments sidecar, h2c
// from each payments sidecar to its grpc-js server. Unary and bidirectional streaming
// calls, UNAVAILABLE retried onto the other replica, per-request balancing of one channel,
// grpc-timeout, then h2load and curl --http2-prior-knowledge against the same listener.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { http, remora, startProxy, type Proxy } from "./support/processes.ts";

const PAYMENTS_ID = "spiffe://cluster.local/ns/default/sa/payments";
const ORDERS_ID = "spiffe://cluster.local/ns/default/sa/orders";

const PROTO = `syntax = "proto3";
package remora.test;
service Payments {
  rpc Charge (ChargeRequest) returns (ChargeReply);
  rpc Chat (stream ChargeRequest) returns (stream ChargeReply);
}
message ChargeRequest { int32 n = 1; string note = 2; }
message ChargeReply { int32 n = 1; string replica = 2; }
`;

interface ChargeReply { n: number; replica: string }
interface PaymentsClient extends grpc.Client {
  Charge(req: { n: number; note?: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, reply?: ChargeReply) => void): grpc.ClientUnaryCall;
  Chat(md?: grpc.Metadata): grpc.ClientDuplexStream<{ n: number }, ChargeReply>;
}

interface GrpcApp {
  name: string;
  address: string;
  mode: "ok" | "unavailable";
  hits: number;
  lastMetadata?: grpc.Metadata;
  close(): Promise<void>;
}

let dir: string;
let service: grpc.ServiceClientConstructor;
const cleanup: (() => Promise<void>)[] = [];

async function startGrpcApp(name: string): Promise<GrpcApp> {
  const server = new grpc.Server();
  const app: GrpcApp = { name, address: "", mode: "ok", hits: 0, close: async () => {} };
  server.addService(service.service, {
    Charge(call: grpc.ServerUnaryCall<{ n: number; note: string }, ChargeReply>, done: grpc.sendUnaryData<ChargeReply>) {
      app.hits++;
      app.lastMetadata = call.metadata;
      if (app.mode === "unavailable") return done({ code: grpc.status.UNAVAILABLE, details: `${name} is draining` });
      const trailer = new grpc.Metadata();
      trailer.set("x-replica", name);
      const reply = () => done(null, { n: call.request.n, replica: name }, trailer);
      if (call.request.note === "slow") setTimeout(reply, 3_000);
      else reply();
    },
    Chat(call: grpc.ServerDuplexStream<{ n: number }, ChargeReply>) {
      app.hits++;
      const md = new grpc.Metadata();
      md.set("x-chat", "hello");
      call.sendMetadata(md);
      let count = 0;
      call.on("data", (m: { n: number }) => {
        count++;
        call.write({ n: m.n * 2, replica: name });
      });
      call.on("end", () => {
        const trailer = new grpc.Metadata();
        trailer.set("x-chat-count", String(count));
        call.end(trailer);
      });
    },
  });
  const port = await new Promise<number>((ok, fail) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? fail(e) : ok(p))));
  app.address = `127.0.0.1:${port}`;
  app.close = () => new Promise((ok) => server.tryShutdown(() => ok()));
  return app;
}

function sidecarConfig(svc: string, extra: string): string {
  return `identity: { cert: certs/${svc}.pem, key: certs/${svc}-key.pem, bundle: certs/root.pem }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
${extra}`;
}

async function proxy(name: string, text: string): Promise<Proxy> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, text);
  const p = await startProxy(path);
  cleanup.push(() => p.stop());
  return p;
}

function unary(client: PaymentsClient, req: { n: number; note?: string }, opts: grpc.CallOptions = {}): Promise<{ reply: ChargeReply; trailers: grpc.Metadata }> {
  return new Promise((ok, fail) => {
    let reply: ChargeReply | undefined;
    let error: grpc.ServiceError | null = null;
    const call = client.Charge(req, new grpc.Metadata(), opts, (err, r) => {
      error = err;
      reply = r;
    });
    call.on("status", (s: grpc.StatusObject) => setImmediate(() => (error ? fail(error) : ok({ reply: reply!, trailers: s.metadata }))));
  });
}

function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((ok) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 4 << 20 }, (err, stdout, stderr) => ok({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }));
  });
}

function metric(text: string, pattern: RegExp): number {
  return text.split("\n").filter((l) => pattern.test(l)).reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-grpc-"));
  await writeFile(join(dir, "payments.proto"), PROTO);
  const def = await protoLoader.load(join(dir, "payments.proto"), { keepCase: true, defaults: true });
  service = (grpc.loadPackageDefinition(def) as unknown as { remora: { test: { Payments: grpc.ServiceClientConstructor } } }).remora.test.Payments;
  const r = await remora(["certs", "--out", join(dir, "certs"), "orders", "payments"]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  await rm(dir, { recursive: true, force: true });
});

describe("gRPC through two sidecars", { timeout: 240_000 }, () => {
  let a: GrpcApp, b: GrpcApp, b1: Proxy, b2: Proxy, orders: Proxy, client: PaymentsClient;

  before(async () => {
    a = await startGrpcApp("A");
    b = await startGrpcApp("B");
    cleanup.push(() => a.close(), () => b.close());
    const inbound = (app: GrpcApp) => `inbound: { listen: "127.0.0.1:0", app: "${app.address}", mode: STRICT }`;
    b1 = await proxy("b1", sidecarConfig("payments", inbound(a)));
    b2 = await proxy("b2", sidecarConfig("payments", inbound(b)));
    orders = await proxy("orders", sidecarConfig("orders", `endpoints:
  payments:
    - { address: "${b1.inbound}", identity: ${PAYMENTS_ID} }
    - { address: "${b2.inbound}", identity: ${PAYMENTS_ID} }
policies:
  - route:
      destination: payments
      load_balancer: round_robin
      retry_policy:
        retry_on: unavailable,connect-failure,reset
        num_retries: 2
      tls:
        mode: ISTIO_MUTUAL`));
    // h2c with prior knowledge to the outbound listener; :authority names the service.
    client = new service(orders.outbound, grpc.credentials.createInsecure(), { "grpc.default_authority": "payments" }) as unknown as PaymentsClient;
    cleanup.push(async () => client.close());
  });

  test("unary: the reply, the server's trailers, and the caller's verified identity at the app", async () => {
    const { reply, trailers } = await unary(client, { n: 7 });
    assert.equal(reply.n, 7);
    assert.ok(["A", "B"].includes(reply.replica));
    assert.deepEqual(trailers.get("x-replica"), [reply.replica], "custom trailers pass both sidecars");
    const app = reply.replica === "A" ? a : b;
    assert.match(String(app.lastMetadata?.get("x-forwarded-client-cert")[0]), new RegExp(`URI=${ORDERS_ID}$`));
    assert.equal(app.lastMetadata?.get("remora-proto").length, 0, "remora-proto stops at the inbound sidecar");
  });

  test("bidirectional streaming: 50 messages ping-pong, metadata and trailers intact", async () => {
    const call = client.Chat();
    const headers = new Promise<grpc.Metadata>((ok) => call.once("metadata", ok));
    const status = new Promise<grpc.StatusObject>((ok) => call.once("status", ok));
    const replies: ChargeReply[] = [];
    const queue: ChargeReply[] = [];
    let failure: unknown;
    let wake = () => {};
    call.on("data", (r: ChargeReply) => (queue.push(r), wake()));
    call.on("error", (e: unknown) => ((failure = e), wake()));
    const next = async (): Promise<ChargeReply> => {
      while (queue.length === 0 && failure === undefined) await new Promise<void>((ok) => (wake = ok));
      if (failure !== undefined) throw failure;
      return queue.shift()!;
    };
    for (let i = 1; i <= 50; i++) {
      // The next message goes out only after the previous answer came back: this hangs
      // unless both bodies really stream through both sidecars.
      const answer = next();
      call.write({ n: i });
      replies.push(await answer);
    }
    call.end();
    assert.deepEqual(replies.map((r) => r.n), Array.from({ length: 50 }, (_, i) => (i + 1) * 2));
    assert.equal(new Set(replies.map((r) => r.replica)).size, 1, "one call, one replica");
    assert.deepEqual((await headers).get("x-chat"), ["hello"]);
    const s = await status;
    assert.equal(s.code, grpc.status.OK);
    assert.deepEqual(s.metadata.get("x-chat-count"), ["50"]);
  });

  test("a replica answering UNAVAILABLE is retried onto the other (retry_on: unavailable)", async () => {
    a.mode = "unavailable";
    try {
      const before = a.hits;
      for (let i = 0; i < 10; i++) {
        const { reply } = await unary(client, { n: i });
        assert.equal(reply.replica, "B", `call ${i}`);
      }
      assert.ok(a.hits > before, "round robin still sent first attempts to A");
    } finally {
      a.mode = "ok";
    }
  });

  test("1,000 calls on ONE channel are balanced per request across both replicas (35-65% each)", async () => {
    const counts: Record<string, number> = { A: 0, B: 0 };
    let n = 0;
    const worker = async () => {
      while (n < 1_000) {
        const { reply } = await unary(client, { n: n++ });
        counts[reply.replica] = (counts[reply.replica] ?? 0) + 1;
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    const total = counts.A! + counts.B!;
    assert.equal(total, 1_000);
    for (const r of ["A", "B"]) assert.ok(counts[r]! >= 350 && counts[r]! <= 650, `replica ${r} got ${counts[r]} of 1000`);
  });

  test("grpc-timeout: the outbound answers DEADLINE_EXCEEDED itself, trailers-only, HTTP 200", async () => {
    // Raw h2 without a client-side deadline, so the answer can only be the sidecar's.
    const session = http2.connect(`http://${orders.outbound}`);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/remora.test.Payments/Charge", ":authority": "payments", "content-type": "application/grpc", te: "trailers", "grpc-timeout": "300m" });
      // One length-prefixed message: ChargeRequest{note: "slow"} (field 2, length 4).
      stream.end(Buffer.from([0, 0, 0, 0, 6, 0x12, 4, ...Buffer.from("slow")]));
      const [head, flags] = await new Promise<[http2.IncomingHttpHeaders, number]>((ok, fail) => {
        stream.once("response", (h, f) => ok([h, f]));
        stream.once("error", fail);
      });
      assert.equal(head[":status"], 200);
      assert.equal(head["grpc-status"], "4");
      assert.match(decodeURIComponent(String(head["grpc-message"])), /grpc-timeout of 300 ms/);
      assert.ok((flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0, "trailers-only: the head ends the stream");
    } finally {
      session.close();
    }
    // And a grpc-js client with a deadline sees DEADLINE_EXCEEDED.
    const err = await unary(client, { n: 1, note: "slow" }, { deadline: Date.now() + 300 }).then(() => undefined, (e: grpc.ServiceError) => e);
    assert.equal(err?.code, grpc.status.DEADLINE_EXCEEDED);
  });

  test("metrics count gRPC responses by grpc-status on both sides", async () => {
    const out = (await http(orders.admin, "/metrics")).body;
    assert.ok(metric(out, /^remora_grpc_responses_total\{direction="outbound",destination="payments",grpc_status="0"\}/) >= 1_000, "OK calls");
    assert.ok(metric(out, /^remora_grpc_responses_total\{direction="outbound",destination="payments",grpc_status="4"\}/) >= 1, "the expired deadline");
    const inbound = (await http(b1.admin, "/metrics")).body + (await http(b2.admin, "/metrics")).body;
    assert.ok(metric(inbound, /^remora_grpc_responses_total\{direction="inbound",destination="app",grpc_status="14"\}/) >= 1, "A's UNAVAILABLE answers");
  });

  test("h2load: 2,000 gRPC calls over 4 connections x 10 streams, 0 errors, one TLS handshake per peer", async (t) => {
    if ("Deno" in globalThis) {
      // Deno 2.9.6's node:http2 aborts the process ("free(): invalid pointer") under this load.
      console.warn("SKIPPED on Deno: h2load crashes the sidecar inside Deno's node:http2; see docs/runtimes.md (HTTP/2 and gRPC)");
      return t.skip("Deno's node:http2 aborts under h2load (docs/runtimes.md)");
    }
    const body = join(dir, "empty.grpc");
    await writeFile(body, Buffer.from([0, 0, 0, 0, 0])); // one empty ChargeRequest
    const handshakes = async () => metric((await http(orders.admin, "/metrics")).body, /^remora_tls_handshakes_total\{direction="outbound",result="success"\}/);
    const before = await handshakes();
    const r = await run("h2load", ["-n", "2000", "-c", "4", "-m", "10", "-d", body, "-H", ":authority: payments", "-H", "content-type: application/grpc", "-H", "te: trailers",
      `http://${orders.outbound}/remora.test.Payments/Charge`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/, r.stdout);
    assert.match(r.stdout, /status codes: 2000 2xx/, r.stdout);
    assert.ok((await handshakes()) - before <= 2, "at most one new handshake per payments sidecar for 2,000 calls");
  });

  test("curl --http2-prior-knowledge against the outbound listener", async () => {
    const body = join(dir, "empty.grpc");
    const r = await run("curl", ["-sS", "--http2-prior-knowledge", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", "host: payments",
      "--data-binary", `@${body}`, `http://${orders.outbound}/remora.test.Payments/Charge`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "2 200");
  });
});
