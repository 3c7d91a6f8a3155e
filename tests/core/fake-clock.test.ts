import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { systemClock } from "../../src/core/system-clock.ts";

describe("FakeClock", () => {
  test("now() moves only when advanced", () => {
    const clock = new FakeClock(1000);
    assert.equal(clock.now(), 1000);
    clock.advance(250);
    assert.equal(clock.now(), 1250);
  });

  test("advance fires due timers in due order, with time set to each timer's due time", async () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    void clock.sleep(30).then(() => fired.push(`c@${clock.now()}`));
    void clock.sleep(10).then(() => fired.push(`a@${clock.now()}`));
    void clock.sleep(20).then(() => fired.push(`b@${clock.now()}`));
    void clock.sleep(40).then(() => fired.push("late"));
    assert.equal(clock.pending(), 4);
    clock.advance(30);
    await Promise.resolve();
    assert.deepEqual(fired.slice(0, 3).map((f) => f[0]), ["a", "b", "c"]);
    assert.equal(clock.now(), 30);
    assert.equal(clock.pending(), 1);
  });

  test("timers scheduled by callbacks during an advance fire in the same advance if due", () => {
    const clock = new FakeClock();
    const fired: number[] = [];
    const s1 = clock.timeout(10);
    s1.addEventListener("abort", () => {
      fired.push(clock.now());
      clock.timeout(5).addEventListener("abort", () => fired.push(clock.now()));
      clock.timeout(50).addEventListener("abort", () => fired.push(clock.now()));
    });
    clock.advance(20);
    assert.deepEqual(fired, [10, 15]);
    assert.equal(clock.pending(), 1);
    assert.equal(clock.nextTimerAt(), 60);
  });

  test("timeout() aborts with a TimeoutError at the due time, not before", () => {
    const clock = new FakeClock();
    const signal = clock.timeout(100);
    clock.advance(99);
    assert.equal(signal.aborted, false);
    clock.advance(1);
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as DOMException).name, "TimeoutError");
  });

  test("sleep rejects with the signal's reason and its timer is removed", async () => {
    const clock = new FakeClock();
    const controller = new AbortController();
    const slept = clock.sleep(1000, controller.signal);
    assert.equal(clock.pending(), 1);
    controller.abort(new Error("stop"));
    await assert.rejects(slept, /stop/);
    assert.equal(clock.pending(), 0);
    await assert.rejects(clock.sleep(5, controller.signal), /stop/);
  });

  test("run() drives an async operation through several timers without real time", async () => {
    const clock = new FakeClock();
    const work = async (): Promise<number> => {
      await clock.sleep(100);
      await Promise.resolve();
      await clock.sleep(200);
      return clock.now();
    };
    assert.equal(await clock.run(work()), 300);
  });

  test("run() passes rejections through", async () => {
    const clock = new FakeClock();
    const work = async (): Promise<never> => {
      await clock.sleep(10);
      throw new Error("boom");
    };
    await assert.rejects(clock.run(work()), /boom/);
  });

  test("run() fails loudly when nothing can ever settle the promise", async () => {
    const clock = new FakeClock();
    await assert.rejects(clock.run(new Promise(() => {})), /no timer is scheduled/);
  });

  test("run() gives up after maxSteps instead of hanging", async () => {
    const clock = new FakeClock();
    const forever = async (): Promise<void> => {
      for (;;) await clock.sleep(1);
    };
    await assert.rejects(clock.run(forever(), { maxSteps: 50 }), /gave up after 50/);
  });
});

describe("systemClock", () => {
  test("now() is wall time and an aborted sleep rejects at once", async () => {
    const before = Date.now();
    assert.ok(systemClock.now() >= before);
    const controller = new AbortController();
    controller.abort(new Error("already"));
    await assert.rejects(systemClock.sleep(60_000, controller.signal), /already/);
    const c2 = new AbortController();
    const slept = systemClock.sleep(60_000, c2.signal);
    c2.abort(new Error("later"));
    await assert.rejects(slept, /later/);
    assert.equal(systemClock.timeout(60_000).aborted, false);
  });
});
