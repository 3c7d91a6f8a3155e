// mTLS handshake benchmark client, run as its own process: COUNT full handshakes (no
// session resumption: every connection starts from a ClientHello without a ticket) with
// CONCURRENCY in flight, each presenting a client certificate. A connection counts once
// the handshake is done and the server has taken the close gracefully, so the server has
// processed the client's certificate and Finished (TLS 1.3 verifies them after the client
// considers itself connected).
//
//   node bench/load/handshake.ts '{"target":"127.0.0.1:15006","count":2000,"concurrency":8,"cert":"...","key":"...","ca":"..."}'

import tls from "node:tls";
import { readFileSync } from "node:fs";
import { build } from "hdr-histogram-js";
import type { HandshakeResult, HandshakeSpec } from "./spec.ts";

const spec = JSON.parse(process.argv[2] ?? "{}") as HandshakeSpec;
const i = spec.target.lastIndexOf(":");
const host = spec.target.slice(0, i);
const port = Number(spec.target.slice(i + 1));
const secureContext = tls.createSecureContext({ cert: readFileSync(spec.cert), key: readFileSync(spec.key), ca: readFileSync(spec.ca) });
const times = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const errors: Record<string, number> = {};
let started = 0;
let ok = 0;
let protocol = "";
let cipher = "";

function one(): Promise<void> {
  return new Promise((done) => {
    const t0 = performance.now();
    let handshook = false;
    const socket = tls.connect({ host, port, secureContext, rejectUnauthorized: true, checkServerIdentity: () => undefined });
    socket.setNoDelay(true);
    socket.once("secureConnect", () => {
      handshook = true;
      times.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      protocol = socket.getProtocol() ?? "";
      cipher = socket.getCipher()?.name ?? "";
      socket.end();
    });
    socket.on("data", () => {}); // session tickets, if any
    socket.once("error", (err: NodeJS.ErrnoException) => {
      const kind = handshook ? "after-handshake" : (err.code ?? err.message);
      if (!handshook || err.code !== "ECONNRESET") errors[kind] = (errors[kind] ?? 0) + 1;
    });
    socket.once("close", () => {
      if (handshook) ok++;
      done();
    });
  });
}

async function worker(): Promise<void> {
  while (started < spec.count) {
    started++;
    await one();
  }
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(Array.from({ length: spec.concurrency }, worker));
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const pct = (q: number) => times.getValueAtPercentile(q) / 1000;
const result: HandshakeResult = {
  count: spec.count,
  ok,
  errors,
  wallMs,
  handshakesPerSec: (ok * 1000) / wallMs,
  timeMs: { p50: pct(50), p90: pct(90), p99: pct(99), max: times.maxValue / 1000 },
  protocol,
  cipher,
  clientCpuCores: (cpu.user + cpu.system) / 1e3 / wallMs,
};
process.stdout.write(JSON.stringify(result) + "\n");
process.exit(0);
