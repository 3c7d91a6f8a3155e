// The CI soak: `node bench/soak.ts --minutes 3` (certificates rotating every ~30 s, a policy
// change every 30 s) must end with zero failed requests, a flat live heap and flat file
// descriptors, and RSS under its ceiling (the verdict itself: tests/core/soak-verdict.test.ts).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SOAK = fileURLToPath(new URL("../../bench/soak.ts", import.meta.url));
const minutes = process.env.REMORA_SOAK_MINUTES ?? "3";

test(`soak for ${minutes} minutes: no failed request, live heap and fds flat, RSS under the ceiling`, { timeout: (Number(minutes) + 3) * 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), "remora-soak-test-"));
  try {
    const out = join(dir, "soak.json");
    // The bench itself runs on Node (it reads /proc and spawns `remora` with this binary).
    const code = await new Promise<number | null>((ok, fail) => {
      const child = spawn(process.execPath, [SOAK, "--minutes", minutes, "--out", out], { stdio: ["ignore", "inherit", "inherit"] });
      child.on("error", fail);
      child.on("exit", (c) => ok(c));
    });
    const result = JSON.parse(readFileSync(out, "utf8")) as { pass: boolean; requests: { ok: number; failed: number; failures: string[] }; rotations: Record<string, number>; processes: { name: string; judgedBy: string; rssFlat: boolean; fdsFlat: boolean }[] };
    assert.deepEqual(result.requests.failures, []);
    assert.ok(result.requests.ok > 0);
    for (const [name, n] of Object.entries(result.rotations)) assert.ok(n >= 2, `${name} rotated its certificate ${n} times`);
    for (const p of result.processes) {
      // Judged by RSS means the heap could not be read from /metrics: the verdict would be blind.
      assert.equal(p.judgedBy, "heap", `${p.name} was judged without its live heap: ${JSON.stringify(p)}`);
      assert.ok(p.rssFlat && p.fdsFlat, `${p.name}: ${JSON.stringify(p)}`);
    }
    assert.equal(result.pass, true);
    assert.equal(code, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
