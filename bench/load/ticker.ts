// A precise alarm clock for the open-loop generator, on its own thread: node timers fire
// on a millisecond loop clock (up to ~1 ms late), Atomics.wait sleeps to the microsecond,
// and a message wakes the generator's event loop at once. Ticks at start + k * period.

import { parentPort, workerData } from "node:worker_threads";

const { startEpochMs, periodMs } = workerData as { startEpochMs: number; periodMs: number };
const cell = new Int32Array(new SharedArrayBuffer(4));
const now = () => performance.timeOrigin + performance.now();
for (let k = 1; ; ) {
  const wait = startEpochMs + k * periodMs - now();
  if (wait > 0) Atomics.wait(cell, 0, 0, wait);
  parentPort!.postMessage(k);
  // After a late wake, skip to the next tick still ahead rather than firing a backlog.
  k = Math.max(k + 1, Math.floor((now() - startEpochMs) / periodMs) + 1);
}
