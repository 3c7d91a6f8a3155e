// Turning access lines off: the config file's `access_log` and `remora proxy --access-log`.
// (What the logger does with the switch is in cli-log.test.ts.)

import { test } from "node:test";
import assert from "node:assert/strict";
import { isRemoraError } from "../../src/core/errors.ts";
import { parseConfigDocument } from "../../src/sidecar/config.ts";
import { accessLogFlag } from "../../src/cli/proxy.ts";
import { UsageError } from "../../src/cli/args.ts";

const identity = { cert: "c.pem", key: "k.pem", bundle: "b.pem" };

test("access_log is optional and a boolean", () => {
  assert.equal(parseConfigDocument({ identity }, "s.yaml").access_log, undefined);
  assert.equal(parseConfigDocument({ identity, access_log: false }, "s.yaml").access_log, false);
});

test("an access_log that is not a boolean is one sentence naming the file and field", () => {
  assert.throws(
    () => parseConfigDocument({ identity, access_log: "off" }, "s.yaml"),
    (e: unknown) => isRemoraError(e, "ERR_CONFIG_INVALID") && /s\.yaml/.test(e.message) && /access_log/.test(e.message) && !e.message.includes("\n"),
  );
});

test("--access-log is on or off, absent is undefined, anything else a usage error naming the flag", () => {
  assert.equal(accessLogFlag(undefined), undefined);
  assert.equal(accessLogFlag("on"), true);
  assert.equal(accessLogFlag("off"), false);
  assert.throws(() => accessLogFlag("false"), (e: unknown) => e instanceof UsageError && /--access-log "false" is neither on nor off/.test(e.message));
});
