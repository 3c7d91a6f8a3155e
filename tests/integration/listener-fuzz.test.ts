// HTTP request parsing on every listener, fuzzed with fast-check: a real sidecar process
// (outbound, STRICT mTLS inbound, admin) and a real control plane (HTTPS API) get random
// bytes, mutated valid requests and the classic parsing attacks over raw sockets. Per input:
// the connection ends or answers within a deadline; every answer is HTTP/1.1 with a final
// status, and a 4xx/5xx says why; nothing reaches the app but requests a correct parser
// could read from the bytes (support/http1-oracle.ts), so no smuggled request; both processes
// stay up and keep serving. Bounded by runs and wall-clock time per listener; a failure
// prints fast-check's seed and path (replay: REMORA_FUZZ_SEED=<seed>).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import net from "node:net";
import tls from "node:tls";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { remora, startProxy, type Proxy } from "./support/processes.ts";
import { freePort, startControl, type ControlProcess } from "./support/control-process.ts";
import { stopChild } from "./support/signal.ts";
import { appPath, readRequests, type OracleAllowances } from "./support/http1-oracle.ts";
import { looksLikeH2, readResponses, responseProblem } from "./support/http1-responses.ts";
import { clientBytes, type Dialect } from "./support/http1-fuzz-inputs.ts";

const SEED = Number(process.env.REMORA_FUZZ_SEED ?? 20261125);
const RUNS = Number(process.env.REMORA_FUZZ_RUNS ?? 300);
/** Longer hunts: REMORA_FUZZ_RUNS=3000 REMORA_FUZZ_TIME_SCALE=10. */
const TIME_SCALE = Number(process.env.REMORA_FUZZ_TIME_SCALE ?? 1);
/** The listeners' own header and body timeouts (static config), so held-open inputs end quickly. */
const LISTENER_TIMEOUT_MS = 500;
/** How long a listener with those timeouts gets to end held-open input by itself (generous: a loaded machine). */
const SELF_CLOSE_MS = 4000;
/** Elsewhere, how long the client waits for an answer before it half-closes. */
const QUIET_MS = 1000;
/** How long one input may take to be answered or closed in the end: generous, never a timing assertion. */
const DEADLINE_MS = 10_000;
const isDeno = "Deno" in globalThis;
/** Known divergences the oracle may tolerate (support/http1-oracle.ts); none are needed now. */
const ALLOW: OracleAllowances = {};
/**
 * An open finding this test tolerates so it guards everything else meanwhile (reported; the fix
 * belongs in src/runtime/node/serve.ts): when a malformed or over-limit request, or a CONNECT
 * on a listener without tunnels, follows a valid pipelined one, node's listener answers the
 * bad one at once and closes, cutting or replacing the response still due for the valid
 * request (RFC 9112 §9.3.2 wants them in order). Tolerated only for pipelined inputs.
 */
const TOLERATE_CUT_BEFORE_BAD_PIPELINED = true;
if (TOLERATE_CUT_BEFORE_BAD_PIPELINED) console.error("\n*** listener fuzz: tolerating responses cut by a malformed pipelined request (open finding, docs/hardening.md) ***\n");

interface Hit {
  method: string;
  url: string;
  body: string;
  /** The whole body arrived. */
  complete: boolean;
  /** Complete, or cut off: only then is the hit checked. */
  settled: boolean;
  checked: boolean;
}

let dir: string;
let sidecar: Proxy;
let control: ControlProcess;
let app: Server;
let appAddress: string;
const hits: Hit[] = [];
/** Requests the oracle read as well-formed from some input: `METHOD path body`, and heads `METHOD path`. */
const accepted = new Set<string>();
const acceptedHeads = new Set<string>();
let ca: string;
let clientCert: { cert: string; key: string };
let controlCa: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-fuzz-"));
  const certs = await remora(["certs", "--out", join(dir, "certs"), "payments", "orders"]);
  assert.equal(certs.code, 0, certs.stderr);
  ca = await readFile(join(dir, "certs", "root.pem"), "utf8");
  clientCert = { cert: await readFile(join(dir, "certs", "orders.pem"), "utf8"), key: await readFile(join(dir, "certs", "orders-key.pem"), "utf8") };

  app = createServer((req, res) => {
    const hit: Hit = { method: req.method ?? "", url: req.url ?? "", body: "", complete: false, settled: false, checked: false };
    hits.push(hit);
    req.setEncoding("latin1");
    req.on("data", (c: string) => (hit.body += c));
    req.on("end", () => {
      hit.complete = hit.settled = true;
      res.end(`app ${hit.method} ${hit.url}`);
    });
    req.on("close", () => (hit.settled = true));
  });
  await new Promise<void>((ok) => app.listen(0, "127.0.0.1", ok));
  appAddress = `127.0.0.1:${(app.address() as net.AddressInfo).port}`;

  const config = join(dir, "sidecar.yaml");
  await writeFile(
    config,
    `identity: { cert: certs/payments.pem, key: certs/payments-key.pem, bundle: certs/root.pem }
inbound: { listen: "127.0.0.1:0", app: "${appAddress}", mode: STRICT }
outbound: { listen: "127.0.0.1:0" }
admin: { listen: "127.0.0.1:0" }
endpoints:
  app:
    - { address: "${appAddress}" }
policies:
  - route: { destination: app, retry_policy: { num_retries: 0 }, tls: { mode: DISABLE } }
limits: { request_headers_timeout: ${LISTENER_TIMEOUT_MS}ms, request_body_idle_timeout: ${LISTENER_TIMEOUT_MS}ms, max_request_body_bytes: 65536 }
drain_timeout: 1s
`,
  );
  sidecar = await startProxy(config, 30_000);
  control = await startControl(["--data", join(dir, "cp"), "--listen", `127.0.0.1:${await freePort()}`]);
  controlCa = await readFile(join(dir, "cp", "root.pem"), "utf8");
});

after(async () => {
  if (sidecar) await stopChild(sidecar.child);
  if (control) await stopChild(control.child);
  app?.closeAllConnections();
  await new Promise((ok) => app?.close(ok));
  if (dir) await rm(dir, { recursive: true, force: true });
});

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

interface Target {
  name: string;
  dialect: Dialect;
  /** A connected socket (after the TLS handshake, for TLS targets). */
  open(): Promise<net.Socket>;
  /**
   * The listener runs with the short header and body timeouts above, so it must end a
   * connection holding incomplete input by itself. Otherwise the client half-closes after a
   * quiet spell, and the listener must then answer or close.
   */
  selfClose: boolean;
  /** Raw bytes to a TLS port: a TLS alert or a close is the answer, not HTTP. */
  rawTls?: boolean;
  budgetMs: number;
  liveness: { request: string; expect: RegExp; open?: () => Promise<net.Socket> };
}

function connectPlain(address: string): Promise<net.Socket> {
  return new Promise((ok, fail) => {
    const s = net.connect(portOf(address), "127.0.0.1", () => ok(s));
    s.once("error", fail);
  });
}

function connectTls(address: string, o: { ca: string; cert?: string; key?: string }): Promise<net.Socket> {
  return new Promise((ok, fail) => {
    // The chain is verified; the host-name check is not (SVIDs carry SPIFFE IDs, not names).
    const s = tls.connect({ host: "127.0.0.1", port: portOf(address), ...o, checkServerIdentity: () => undefined }, () => ok(s));
    s.once("error", fail);
  });
}

interface Exchange {
  got: string;
  closed: boolean;
  /** The client had to half-close before the listener answered or closed. */
  halfClosed: boolean;
}

/**
 * Writes `bytes` and waits until the listener closed, or sent as many complete responses as
 * the input held well-formed requests (at least one). After `quietMs` without either, the
 * client half-closes; past DEADLINE_MS it is a hang.
 */
async function exchange(open: () => Promise<net.Socket>, bytes: string, o: { methods: readonly string[]; quietMs: number }): Promise<Exchange> {
  const socket = await open();
  return new Promise((ok, fail) => {
    let got = "";
    let done = false;
    let halfClosed = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(quiet);
      clearTimeout(deadline);
      socket.destroy();
      ok({ got, closed, halfClosed });
    };
    const quiet = setTimeout(() => {
      halfClosed = true;
      socket.end();
    }, o.quietMs);
    const deadline = setTimeout(() => {
      done = true;
      clearTimeout(quiet);
      socket.destroy();
      fail(new Error(`neither answered nor closed within ${DEADLINE_MS} ms (half-closed after ${o.quietMs} ms); got ${JSON.stringify(got.slice(0, 200))}`));
    }, DEADLINE_MS);
    socket.on("data", (c: Buffer) => {
      got += c.toString("latin1");
      const r = readResponses(got, o.methods);
      if (r.rest === "" && r.responses.length >= Math.max(1, o.methods.length)) finish(false);
    });
    socket.on("error", () => {});
    socket.on("close", () => finish(true));
    // No zero-length write: on Deno's node:tls client one keeps a later end() from ever closing (docs/runtimes.md).
    if (bytes.length > 0) socket.write(Buffer.from(bytes, "latin1"), () => {});
  });
}

let liveCount = 0;
async function assertAlive(t: Target): Promise<void> {
  assert.equal(sidecar.child.exitCode ?? sidecar.child.signalCode, null, "the sidecar process exited");
  assert.equal(control.child.exitCode ?? control.child.signalCode, null, "the control plane process exited");
  const request = t.liveness.request.replace("{id}", String(++liveCount));
  for (const q of readRequests(request, ALLOW).complete) accepted.add(`${q.method} ${q.path} ${q.body}`);
  const r = await exchange(t.liveness.open ?? t.open, request, { methods: ["GET"], quietMs: DEADLINE_MS });
  const first = readResponses(r.got).responses[0];
  assert.ok(first && first.status === 200 && t.liveness.expect.test(first.body), `${t.name} no longer serves a valid request: ${JSON.stringify(r.got.slice(0, 300))}`);
}

/** The first request the app saw (and finished or lost) that the oracle read from no input, if any. */
function strayAppRequest(): Hit | undefined {
  for (const h of hits) {
    if (h.checked || !h.settled) continue;
    h.checked = true;
    const path = appPath(h.url) ?? h.url;
    const ok = h.complete ? accepted.has(`${h.method} ${path} ${h.body}`) : acceptedHeads.has(`${h.method} ${path}`);
    if (!ok) return h;
  }
  return undefined;
}

const strayMessage = (h: Hit) => `the app received ${JSON.stringify({ ...h, body: h.body.slice(0, 200) })}, which no well-formed request the fuzzer sent carried`;

/** What is wrong with the listener's answer to `bytes`, or undefined. */
async function answerProblem(t: Target, bytes: string): Promise<string | undefined> {
  const oracle = readRequests(bytes, ALLOW);
  for (const q of oracle.complete) accepted.add(`${q.method} ${q.path} ${q.body}`);
  for (const q of [...oracle.complete, ...oracle.partial]) acceptedHeads.add(`${q.method} ${q.path}`);
  const methods = oracle.complete.map((q) => q.method);
  const h2Preface = bytes.startsWith("PRI * HTTP/2.0\r\n");
  // A tunnel (CONNECT, Upgrade, HTTP/2) or an idle connection may stay open: the client ends those.
  const mustSelfClose = t.selfClose && bytes.length > 0 && !oracle.tunnel && !h2Preface;
  const r = await exchange(t.open, bytes, { methods, quietMs: mustSelfClose ? SELF_CLOSE_MS : QUIET_MS });
  if (mustSelfClose && r.halfClosed) return `held-open input was neither answered nor closed by the listener within ${SELF_CLOSE_MS} ms (its own timeouts are ${LISTENER_TIMEOUT_MS} ms); got ${JSON.stringify(r.got.slice(0, 300))}`;
  if (h2Preface && looksLikeH2(r.got)) return undefined;
  if (t.rawTls && (r.got === "" || r.got.charCodeAt(0) === 0x15 || r.got.charCodeAt(0) === 0x16)) return undefined;
  // Responses may come out of step with the requests (a 400 for a later one first), so HEAD's bodiless rule may not apply.
  const reading = [readResponses(r.got, methods), readResponses(r.got)].find((x) => x.rest === "") ?? readResponses(r.got, methods);
  const pipelined = oracle.complete.length > 1 || (oracle.complete.length > 0 && oracle.trailing);
  const cutByBadPipelined = TOLERATE_CUT_BEFORE_BAD_PIPELINED && r.closed && pipelined && reading.rest.startsWith("HTTP/1.");
  return responseProblem(r.closed && !cutByBadPipelined ? reading : { ...reading, rest: "" });
}

const BATCH = 20;

function fuzz(t: Target): () => Promise<void> {
  return async () => {
    let inputs = 0;
    const start = Date.now();
    // One run is a batch of inputs on parallel connections; the listener must still serve between batches.
    const details = await fc.check(
      fc.asyncProperty(fc.array(clientBytes(t.dialect), { minLength: BATCH, maxLength: BATCH }), async (batch) => {
        // The wall-clock bound: later batches are skipped, never cut midway (a cut could hide a hang).
        if (Date.now() - start > t.budgetMs * TIME_SCALE) return;
        inputs += batch.length;
        const problems = await Promise.all(batch.map((b) => answerProblem(t, b).catch((e: Error) => e.message)));
        const i = problems.findIndex((p) => p !== undefined);
        const failed = problems.filter((p) => p !== undefined).length;
        if (i >= 0) throw new InputFailure(`${t.name}: ${problems[i]}${failed > 1 ? ` (and ${failed - 1} more inputs of this batch failed)` : ""}`, batch[i]!);
        const stray = strayAppRequest();
        if (stray) {
          // Name the inputs whose request line carried what the app saw, if any did.
          const escaped = stray.url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
          const culprits = batch.filter((b) => new RegExp(`${stray.method}[^\\n]*${escaped}[ \\t?]`).test(b));
          throw new InputFailure(strayMessage(stray), (culprits.length > 0 ? culprits : batch).join(" ⏎⏎ "));
        }
        await assertAlive(t);
      }),
      { seed: SEED, numRuns: Math.ceil(RUNS / BATCH), endOnFailure: true },
    );
    if (details.failed) {
      // fast-check's own report prints every input of the batch (up to 70 KB each); this one stays readable.
      const e = details.errorInstance;
      const input = e instanceof InputFailure ? e.input : "(see the message)";
      const message = e instanceof Error ? e.message : String(e);
      assert.fail(
        `${message.split("\n")[0]}\n  input (${input.length} bytes): ${JSON.stringify(input.length > 700 ? `${input.slice(0, 500)}…${input.slice(-150)}` : input)}\n  replay: REMORA_FUZZ_SEED=${details.seed} (fast-check path "${details.counterexamplePath}", after ${inputs} inputs)`,
      );
    }
    // Requests forwarded late (after their client's connection ended) are checked too.
    for (let waited = 0; hits.some((h) => !h.settled) && waited < DEADLINE_MS; waited += 50) await new Promise((ok) => setTimeout(ok, 50));
    const late = strayAppRequest();
    assert.equal(late, undefined, late && strayMessage(late));
    console.error(`${t.name}: ${inputs} inputs in ${Date.now() - start} ms (seed ${SEED})`);
    assert.ok(inputs >= Math.min(RUNS, 60), `${t.name}: only ${inputs} inputs ran within ${t.budgetMs * TIME_SCALE} ms`);
  };
}

class InputFailure extends Error {
  readonly input: string;
  constructor(message: string, input: string) {
    super(message);
    this.input = input;
  }
}

const appDialect: Dialect = { paths: ["/fz/{id}", "/fz/{id}?q=1", "/"], host: "app", absolute: "http://app" };

describe(`listener fuzz (seed ${SEED})`, () => {
  const only = process.env.REMORA_FUZZ_ONLY;
  test("outbound (plain HTTP, proxy requests to the app)", { skip: only !== undefined && only !== "outbound" }, async () =>
    fuzz({
      name: "outbound",
      dialect: appDialect,
      open: () => connectPlain(sidecar.outbound),
      // Deno.serve has no headers timeout (docs/runtimes.md).
      selfClose: !isDeno,
      budgetMs: 10_000,
      liveness: { request: "GET http://app/alive/{id} HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n", expect: /^app GET \/alive\/\d+$/ },
    })());

  test("inbound, inside an mTLS connection with a valid client certificate", { skip: only !== undefined && only !== "inbound (mTLS)" }, async () =>
    fuzz({
      name: "inbound (mTLS)",
      dialect: { paths: ["/fz/{id}", "/fz/{id}?q=1", "/"], host: "payments" },
      open: () => connectTls(sidecar.inbound!, { ca, ...clientCert }),
      selfClose: true,
      budgetMs: 10_000,
      liveness: { request: "GET /alive/{id} HTTP/1.1\r\nhost: payments\r\nconnection: close\r\n\r\n", expect: /^app GET \/alive\/\d+$/ },
    })());

  test("inbound, raw bytes to the TLS port", { skip: only !== undefined && only !== "inbound (raw)" }, async () =>
    fuzz({
      name: "inbound (raw)",
      dialect: { paths: ["/fz/{id}", "/"], host: "payments" },
      open: () => connectPlain(sidecar.inbound!),
      selfClose: false,
      rawTls: true,
      budgetMs: 5_000,
      liveness: {
        request: "GET /alive/{id} HTTP/1.1\r\nhost: payments\r\nconnection: close\r\n\r\n",
        expect: /^app GET \/alive\/\d+$/,
        open: () => connectTls(sidecar.inbound!, { ca, ...clientCert }),
      },
    })());

  test("admin", { skip: only !== undefined && only !== "admin" }, async () =>
    fuzz({
      name: "admin",
      dialect: { paths: ["/live", "/ready", "/metrics", "/config", "/routes", "/endpoints", "/nope/{id}"], host: "admin" },
      open: () => connectPlain(sidecar.admin),
      selfClose: !isDeno,
      budgetMs: 8_000,
      liveness: { request: "GET /live HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n", expect: /live/ },
    })());

  test("control plane HTTPS API (no client certificate, as a join-token holder)", { skip: only !== undefined && only !== "control" }, async () =>
    fuzz({
      name: "control",
      dialect: { paths: ["/v1/bundle", "/v1/config", "/v1/identity", "/v1/proxies", "/v2/config", "/v1/tokens", "/nope/{id}"], host: "control" },
      open: () => connectTls(control.address, { ca: controlCa }),
      // The control plane keeps the default 10 s headers timeout.
      selfClose: false,
      budgetMs: 8_000,
      liveness: { request: "GET /v1/bundle HTTP/1.1\r\nhost: control\r\nconnection: close\r\n\r\n", expect: /BEGIN CERTIFICATE/ },
    })());
});
