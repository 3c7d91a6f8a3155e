import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "../../src/core/duration.ts";
import { isRemoraError } from "../../src/core/errors.ts";

describe("parseDuration", () => {
  const cases: [string, number][] = [
    ["0", 0],
    ["0s", 0],
    ["250ms", 250],
    ["30s", 30_000],
    ["1m", 60_000],
    ["1h", 3_600_000],
    ["1.5s", 1_500],
    ["1.1s", 1_100],
    [".5s", 500],
    ["1m30s", 90_000],
    ["1h2m3s4ms", 3_723_004],
    ["500us", 0.5],
    ["1500us", 1.5],
    ["2µs", 0.002],
    ["1.5h", 5_400_000],
    [" 10s ", 10_000],
  ];
  for (const [text, ms] of cases) {
    test(`${JSON.stringify(text)} is ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  }

  for (const bad of ["25x", "", "10", "s", "-1s", "1.s", "1 s", "1sm", "ms", "1.5.5s", "0x10s", "1d", "1S"]) {
    test(`${JSON.stringify(bad)} is refused with a sentence naming it`, () => {
      assert.throws(
        () => parseDuration(bad),
        (e: unknown) => isRemoraError(e, "ERR_DURATION") && e.message === `${JSON.stringify(bad)} is not a duration`,
      );
    });
  }
});

describe("formatDuration", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [250, "250ms"],
    [1, "1ms"],
    [30_000, "30s"],
    [90_000, "1m30s"],
    [60_000, "1m"],
    [3_600_000, "1h"],
    [5_400_000, "1h30m"],
    [1_500, "1.5s"],
    [1_100, "1.1s"],
    [30_250, "30.25s"],
    [0.5, "500us"],
    [1.5, "1.5ms"],
    [3_723_004, "1h2m3.004s"],
    [300_000, "5m"],
  ];
  for (const [ms, text] of cases) {
    test(`${ms} ms is ${JSON.stringify(text)} and parses back`, () => {
      assert.equal(formatDuration(ms), text);
      assert.equal(parseDuration(text), ms);
    });
  }

  test("negative or non-finite values are refused", () => {
    assert.throws(() => formatDuration(-1), RangeError);
    assert.throws(() => formatDuration(Infinity), RangeError);
    assert.throws(() => formatDuration(NaN), RangeError);
  });

  test("round-trips whole milliseconds up to a day", () => {
    for (let ms = 0; ms < 86_400_000; ms += 7_777_777 + (ms % 13)) {
      assert.equal(parseDuration(formatDuration(ms)), ms);
    }
  });
});
