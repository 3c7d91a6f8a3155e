// pipeBoth (src/sidecar/pipe.ts) with fake sockets and a fake clock: bytes and half-close
// cross, and once both directions have ended nothing is destroyed while a side may still be
// flushing its last bytes (CI on Deno lost the tail of an echo that way).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { FakeClock } from "../../src/core/fake-clock.ts";
import type { Duplex } from "../../src/runtime/types.ts";
import { pipeBoth, type PipeResult } from "../../src/sidecar/pipe.ts";

class FakeSocket extends EventEmitter {
  readonly written: Uint8Array[] = [];
  ended = false;
  destroyed = false;
  write(chunk: Uint8Array): boolean {
    this.written.push(chunk);
    return true;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
}

function piped(clock: FakeClock) {
  const down = new FakeSocket();
  const up = new FakeSocket();
  let result: PipeResult | undefined;
  void pipeBoth(down as unknown as Duplex, up as unknown as Duplex, { clock, idleMs: 60_000 }).then((r) => (result = r));
  return { down, up, settled: () => result };
}

/** Lets the pipe's promise callbacks run. */
const flush = () => new Promise((r) => setTimeout(r, 0));

describe("pipeBoth", () => {
  test("bytes and each end are passed on; after both ends the sides are left to close by themselves", async () => {
    const clock = new FakeClock(0);
    const { down, up, settled } = piped(clock);
    down.emit("data", new Uint8Array(3));
    up.emit("data", new Uint8Array(5));
    down.emit("end");
    assert.equal(up.ended, true, "the client's FIN reaches the upstream");
    assert.equal(down.ended, false, "the other direction stays open");
    up.emit("end");
    assert.equal(down.ended, true);
    await flush();
    assert.equal(down.destroyed || up.destroyed, false, "nothing is cut while a side may still be writing its last bytes");
    assert.equal(settled(), undefined);
    down.emit("close");
    up.emit("close");
    await flush();
    assert.deepEqual(settled(), { sent: 3, received: 5, end: "closed" });
  });

  test("a side that does not close after both ends is cut after the linger", async () => {
    const clock = new FakeClock(0);
    const { down, up, settled } = piped(clock);
    down.emit("end");
    up.emit("end");
    down.emit("close");
    await flush();
    assert.equal(up.destroyed, false);
    clock.advance(1_000);
    await flush();
    assert.equal(up.destroyed, true);
    assert.equal(settled()?.end, "closed");
  });

  test("a side that closes without ending is a reset: both are cut at once", async () => {
    const clock = new FakeClock(0);
    const { down, up, settled } = piped(clock);
    up.emit("close");
    await flush();
    assert.equal(down.destroyed, true);
    assert.equal(settled()?.end, "error");
    assert.match(settled()?.error ?? "", /upstream connection closed abruptly/);
  });
});
