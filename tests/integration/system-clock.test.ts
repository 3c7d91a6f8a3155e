// The real clock with delays past setTimeout's 2^31-1 ms ceiling (a months-long certificate
// renews at half-life): they must wait, not fire after 1 ms as a bare setTimeout does.

import { test } from "node:test";
import assert from "node:assert/strict";
import { systemClock } from "../../src/core/system-clock.ts";

const BEYOND_CEILING_MS = 2 ** 31 + 60_000;

test("a sleep beyond the timer ceiling does not end early, and aborting it still works", async () => {
  const ac = new AbortController();
  let ended = false;
  const long = systemClock.sleep(BEYOND_CEILING_MS, ac.signal).then(
    () => (ended = true),
    (e: unknown) => e,
  );
  await systemClock.sleep(30);
  assert.equal(ended, false, "the long sleep ended at once");
  ac.abort(new Error("stop"));
  assert.equal(((await long) as Error).message, "stop");
});

test("a timeout beyond the ceiling is not aborted at once", async () => {
  const signal = systemClock.timeout(BEYOND_CEILING_MS);
  await systemClock.sleep(30);
  assert.equal(signal.aborted, false);
});
