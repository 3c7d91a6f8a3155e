import { test } from "node:test";
import assert from "node:assert/strict";
import { createLogger } from "../../src/cli/log.ts";

function capture() {
  const lines: string[] = [];
  return { lines, sink: { write: (l: string) => lines.push(l) } };
}

test("each record is one JSON line in pino's shape: level, time, pid, hostname, base, fields, msg", () => {
  const { lines, sink } = capture();
  createLogger({ service: "remora-sidecar" }, sink).warn({ destination: "payments", skipped: undefined }, "endpoint ejected");
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith("\n"));
  const rec = JSON.parse(lines[0]!);
  assert.deepEqual(Object.keys(rec), ["level", "time", "pid", "hostname", "service", "destination", "msg"]);
  assert.equal(rec.level, 40);
  assert.equal(rec.msg, "endpoint ejected");
  assert.equal(typeof rec.time, "number");
});

test("levels are pino's numbers and a record without fields or message still parses", () => {
  const { lines, sink } = capture();
  const log = createLogger({}, sink);
  log.info({});
  log.error({ n: 1 }, 'quote " and\nnewline');
  assert.equal(JSON.parse(lines[0]!).level, 30);
  const rec = JSON.parse(lines[1]!);
  assert.equal(rec.level, 50);
  assert.equal(rec.msg, 'quote " and\nnewline');
  assert.equal(lines[1]!.split("\n").length, 2, "a newline in a message stays escaped inside its line");
});

test("an Error field keeps its type, message and stack instead of logging as {}", () => {
  const { lines, sink } = capture();
  createLogger({}, sink).error({ err: new TypeError("bad peer") }, "failed");
  const rec = JSON.parse(lines[0]!);
  assert.equal(rec.err.type, "TypeError");
  assert.equal(rec.err.message, "bad peer");
  assert.match(rec.err.stack, /bad peer/);
});

test("with accessBatchMs, access lines are written together and any other line flushes them first, in order", () => {
  const { lines, sink } = capture();
  const log = createLogger({}, sink, { accessBatchMs: 10_000 });
  log.info({ n: 1 }, "access");
  log.info({ n: 2 }, "access");
  assert.equal(lines.length, 0, "access lines wait for their batch");
  log.warn({ n: 3 }, "endpoint ejected");
  assert.equal(lines.length, 2, "the batch, then the warning");
  assert.deepEqual(lines[0]!.trimEnd().split("\n").map((l) => JSON.parse(l).n), [1, 2]);
  assert.equal(JSON.parse(lines[1]!).n, 3);
});

test("with access off, access lines are dropped and every other line is still written", () => {
  const { lines, sink } = capture();
  let on = false;
  const log = createLogger({}, sink, { access: () => on });
  log.info({ path: "/charge" }, "access");
  log.warn({ destination: "payments" }, "endpoint ejected");
  assert.deepEqual(lines.map((l) => JSON.parse(l).msg), ["endpoint ejected"]);
  // Read per line: a config reload that turns access lines back on takes effect at once.
  on = true;
  log.info({ path: "/refund" }, "access");
  assert.deepEqual(lines.map((l) => JSON.parse(l).msg), ["endpoint ejected", "access"]);
});

test("with access off, a batch already gathered is still written when the next line flushes it", () => {
  const { lines, sink } = capture();
  let on = true;
  const log = createLogger({}, sink, { accessBatchMs: 50, access: () => on });
  log.info({ path: "/a" }, "access");
  on = false;
  log.info({ path: "/b" }, "access");
  log.warn({}, "endpoint ejected");
  const written = lines.join("").trim().split("\n").map((l) => JSON.parse(l));
  assert.deepEqual(written.map((r) => r.path ?? r.msg), ["/a", "endpoint ejected"]);
});
