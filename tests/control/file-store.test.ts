// The file store: state survives a new store (and control plane) on the same directory,
// every save replaces the file whole, and no temp file is left behind.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileStore } from "../../src/control/file-store.ts";
import { emptyState } from "../../src/control/store.ts";
import { id, setup } from "./support.ts";

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "remora-store-"));
}

describe("FileStore", () => {
  test("an empty directory loads the empty state", async () => {
    const dir = await tempDir();
    try {
      assert.deepEqual(await new FileStore(dir).load(), emptyState());
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("policies, proxies and the version survive a new store on the same directory", async () => {
    const dir = await tempDir();
    try {
      const first = await setup({ store: new FileStore(dir) });
      await first.admin("PUT", "/v1/policies", { text: "route:\n  destination: payments\n" });
      await first.call("PUT", "/v1/proxies/p1", { peer: id("default", "payments"), body: { service: "payments", address: "192.0.2.1:15006" } });
      const again = await setup({ store: new FileStore(dir) });
      assert.equal(again.plane.version, "3");
      assert.deepEqual(again.plane.snapshot(), first.plane.snapshot());
      const proxies = (await (await again.admin("GET", "/v1/proxies")).json()) as { proxy: string }[];
      assert.deepEqual(proxies.map((p) => p.proxy), ["p1"]);
      assert.deepEqual(await readdir(dir), ["state.json"]);
      assert.equal((await stat(join(dir, "state.json"))).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("concurrent saves land in call order and the file is always whole JSON", async () => {
    const dir = await tempDir();
    try {
      const store = new FileStore(dir);
      const saves = Array.from({ length: 20 }, (_, i) => store.save({ ...emptyState(), version: i + 1 }));
      await Promise.all(saves);
      const text = await readFile(join(dir, "state.json"), "utf8");
      assert.equal((JSON.parse(text) as { version: number }).version, 20);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("a corrupt state file is refused with a sentence naming it", async () => {
    const dir = await tempDir();
    try {
      await writeFile(join(dir, "state.json"), "{ half");
      await assert.rejects(new FileStore(dir).load(), (e: Error) => e.message.includes(join(dir, "state.json")) && /not valid JSON/.test(e.message));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
