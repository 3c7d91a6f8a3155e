import { test } from "node:test";
import assert from "node:assert/strict";
import { createEventHub } from "../../src/sidecar/event-stream.ts";

const decoder = new TextDecoder();

async function readLines(stream: ReadableStream<Uint8Array>, n: number): Promise<Record<string, unknown>[]> {
  const reader = stream.getReader();
  const lines: Record<string, unknown>[] = [];
  let buf = "";
  while (lines.length < n) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0 && lines.length < n) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  }
  reader.releaseLock();
  return lines;
}

test("a reader gets a hello line, then the events it asked for, stamped with time and service", async () => {
  const hub = createEventHub({ service: "orders", now: () => Date.UTC(2026, 0, 1) });
  const stream = hub.subscribe({ types: new Set(["eject"]) });
  hub.publish({ type: "uneject", destination: "payments", endpoint: "192.0.2.1:15006" });
  hub.publish({ type: "eject", destination: "payments", endpoint: "192.0.2.1:15006", reason: "consecutive_5xx", untilMs: 5, ejectionCount: 1 });
  const [hello, eject] = await readLines(stream, 2);
  assert.equal(hello!.type, "hello");
  assert.equal(eject!.type, "eject");
  assert.equal(eject!.service, "orders");
  assert.equal(eject!.time, "2026-01-01T00:00:00.000Z");
  assert.equal(hub.subscribers, 1);
});

test("aborting the signal ends the stream and removes the reader", async () => {
  const hub = createEventHub({ service: "orders", now: () => 0 });
  const ac = new AbortController();
  const stream = hub.subscribe({ signal: ac.signal });
  await readLines(stream, 1);
  ac.abort();
  assert.equal(hub.subscribers, 0);
  const { done } = await stream.getReader().read();
  assert.equal(done, true);
});

test("a reader that falls behind loses events instead of holding the proxy up", () => {
  const hub = createEventHub({ service: "orders", now: () => 0 });
  hub.subscribe();
  for (let i = 0; i < 1_500; i++) hub.publish({ type: "uneject", destination: "payments", endpoint: `192.0.2.1:${i}` });
  assert.ok(hub.dropped > 0 && hub.dropped <= 501, `dropped ${hub.dropped}`);
});
