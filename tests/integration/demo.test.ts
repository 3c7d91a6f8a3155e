// `remora demo` as a new user runs it: it must finish and exit 0, and its narration must
// come from what the sidecars did, so breaking B2 as well changes the story.

import { test } from "node:test";
import assert from "node:assert/strict";
import { remora } from "./support/processes.ts";

test("remora demo narrates the reference scenario and exits 0", async () => {
  const r = await remora(["demo", "--requests", "8"], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /orders app: POST http:\/\/payments\/charge/);
  assert.match(r.stdout, /resolve "payments" -> \[B1 .*, B2 .*\]/);
  assert.match(r.stdout, /attempt 1 to B1 .* failed .*: status 503 \(endpoint answered 503: its app failed \(reset\)\)/);
  assert.match(r.stdout, /mTLS handshake with B2 .* OK .*peer certificate verified: spiffe:\/\/cluster\.local\/ns\/default\/sa\/payments/);
  assert.match(r.stdout, /orders app: got 200 .* from payments B2/);
  assert.match(r.stdout, /outlier detection ejects B1/);
  assert.match(r.stdout, /B1 .* returns to the pool/);
  assert.match(r.stdout, /seed policy, B1 flapping +\d+ +100\.0%/);
  assert.match(r.stdout, /num_retries: 0 +\d+ +(?!100\.0%)\d+\.\d%/);
});

test("with B2 broken too, the narration reports the failures it saw", async () => {
  const r = await remora(["demo", "--requests", "6", "--flapping", "B1,B2"], 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /attempt 2 to B2 .* failed/);
  assert.match(r.stdout, /orders app: got 503/);
  assert.doesNotMatch(r.stdout, /seed policy, B1\+B2 flapping +\d+ +100\.0%/);
});
