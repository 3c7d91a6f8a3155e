import { test } from "node:test";
import assert from "node:assert/strict";
import { jsonObject, lineSplitter, ndjsonRecords } from "../../src/core/ndjson.ts";

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  const enc = new TextEncoder();
  for (const p of parts) yield enc.encode(p);
}

async function collect(body: AsyncIterable<Uint8Array>) {
  const out: Record<string, unknown>[] = [];
  for await (const r of ndjsonRecords(body)) out.push(r);
  return out;
}

test("records split across chunks, and a multi-byte character split across chunks, come out whole", async () => {
  const euro = new TextEncoder().encode('{"p":"€"}\n');
  async function* body() {
    yield* chunks('{"a":1}\n{"b"', ':2}\n');
    yield euro.slice(0, 7);
    yield euro.slice(7);
  }
  assert.deepEqual(await collect(body()), [{ a: 1 }, { b: 2 }, { p: "€" }]);
});

test("lines that are not JSON objects are skipped and an unfinished last line is not emitted", async () => {
  assert.deepEqual(await collect(chunks("garbage\n", "[1,2]\n", "null\n", '{"ok":true}\n', '{"cut":')), [{ ok: true }]);
});

test("lineSplitter keeps a partial line until its LF arrives, across pieces", () => {
  const split = lineSplitter();
  assert.deepEqual(split('{"a":'), []);
  assert.deepEqual(split('1}\n{"b"'), ['{"a":1}']);
  assert.deepEqual(split(':2}\n\nx\n'), ['{"b":2}', "", "x"]);
});

test("jsonObject takes objects only: arrays, scalars and broken JSON are undefined", () => {
  assert.deepEqual(jsonObject('{"level":30}'), { level: 30 });
  for (const line of ["[1]", "3", "null", '"s"', "{broken", ""]) assert.equal(jsonObject(line), undefined, line);
});
