// Hermetic checks for the HA pieces that need no database: sidecar failover between
// control-plane replicas, and the store key (decoding, AES-GCM sealing, refusals).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createFailoverTransport } from "../../src/sidecar/control/failover.ts";
import type { ControlTransport } from "../../src/sidecar/control-client.ts";
import { decodeStoreKey, importStoreKey, loadStoreKey, seal, unseal } from "../../src/control/pg/store-key.ts";
import { parseStoreUrl, redactUrl } from "../../src/control/pg/connection.ts";
import { isRemoraError } from "../../src/core/errors.ts";

function recordingLog() {
  const lines: string[] = [];
  return { lines, log: { info: () => {}, error: () => {}, warn: (_: object, msg?: string) => void lines.push(msg ?? "") } };
}

describe("failover transport", () => {
  test("a connect failure moves to the next replica, the same call is answered there, and the switch is logged once", async () => {
    const calls: string[] = [];
    const down: ControlTransport = async (_m, path) => (calls.push(`A ${path}`), Promise.reject(new Error("connect ECONNREFUSED 192.0.2.1:15010")));
    const up: ControlTransport = async (_m, path) => (calls.push(`B ${path}`), { status: 200, json: { ok: true } });
    const { lines, log } = recordingLog();
    const f = createFailoverTransport([{ url: "https://192.0.2.1:15010", transport: down }, { url: "https://192.0.2.2:15010", transport: up }], log);
    const [r1, r2] = await Promise.all([f.transport("GET", "/v1/config?version=7", undefined, { mtls: true }), f.transport("PUT", "/v1/proxies/p", {}, { mtls: true })]);
    assert.equal(r1.status, 200);
    assert.equal(r2.status, 200);
    assert.equal(f.current(), "https://192.0.2.2:15010");
    assert.equal(lines.length, 1, lines.join("\n"));
    assert.match(lines[0]!, /192\.0\.2\.1:15010 failed .*switching to https:\/\/192\.0\.2\.2:15010/);
    // The watch resumes with the version it held: the query goes to B unchanged.
    assert.ok(calls.includes("B /v1/config?version=7"));
    await f.transport("GET", "/v1/x", undefined, { mtls: true });
    assert.equal(calls.at(-1), "B /v1/x", "later calls go straight to the replica in use");
  });

  test("a 5xx fails over too; when every replica fails the last answer is returned", async () => {
    const five = (status: number): ControlTransport => async () => ({ status, json: { error: "store down" } });
    const { lines, log } = recordingLog();
    const f = createFailoverTransport([{ url: "https://a:1", transport: five(503) }, { url: "https://b:1", transport: five(500) }], log);
    const r = await f.transport("POST", "/v1/identity", {}, { mtls: true });
    assert.equal(r.status, 500);
    assert.equal(lines.length, 2);
  });

  test("a 4xx is an answer, not a failure", async () => {
    const { lines, log } = recordingLog();
    const f = createFailoverTransport([{ url: "https://a:1", transport: async () => ({ status: 403, json: {} }) }, { url: "https://b:1", transport: async () => assert.fail("not tried") }], log);
    assert.equal((await f.transport("GET", "/v1/config", undefined, { mtls: true })).status, 403);
    assert.equal(lines.length, 0);
  });

  test("our own shutdown is not a replica failure", async () => {
    const stop = new AbortController();
    stop.abort();
    const { lines, log } = recordingLog();
    const f = createFailoverTransport([{ url: "https://a:1", transport: async () => Promise.reject(new Error("aborted")) }, { url: "https://b:1", transport: async () => assert.fail("not tried") }], log);
    await assert.rejects(f.transport("GET", "/v1/config", undefined, { mtls: true, signal: stop.signal }), /aborted/);
    assert.equal(lines.length, 0);
  });
});

describe("store key and URL", () => {
  test("base64 and hex keys decode to 32 bytes; anything else is refused naming its source", () => {
    const bytes = Uint8Array.from({ length: 32 }, (_, i) => i);
    const b64 = btoa(String.fromCharCode(...bytes));
    const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
    assert.deepEqual(decodeStoreKey(b64 + "\n", "f"), bytes);
    assert.deepEqual(decodeStoreKey(hex, "f"), bytes);
    assert.throws(() => decodeStoreKey("short", "--store-key-file k.txt"), (e) => isRemoraError(e, "ERR_STORE") && e.message.startsWith("--store-key-file k.txt does not hold a 32-byte key"));
  });

  test("no key at all is refused in one sentence naming both ways to give one", async () => {
    await assert.rejects(loadStoreKey({}), (e) => isRemoraError(e, "ERR_STORE") && /--store-key-file FILE or set REMORA_STORE_KEY/.test(e.message));
  });

  test("sealed values open only with the same key and the same name", async () => {
    const key = await importStoreKey(crypto.getRandomValues(new Uint8Array(32)));
    const s = await seal(key, "root_key", "-----BEGIN PRIVATE KEY-----");
    assert.ok(!new TextDecoder().decode(s.ciphertext).includes("PRIVATE"));
    assert.equal(await unseal(key, "root_key", s, "db"), "-----BEGIN PRIVATE KEY-----");
    await assert.rejects(unseal(key, "token_key", s, "db"), (e) => isRemoraError(e, "ERR_STORE"));
    const other = await importStoreKey(crypto.getRandomValues(new Uint8Array(32)));
    await assert.rejects(unseal(other, "root_key", s, "db"), (e) => isRemoraError(e, "ERR_STORE"));
  });

  test("store URLs: the password never shows; a non-postgres URL is refused", () => {
    assert.equal(redactUrl("postgres://remora:hunter2@192.0.2.1:5432/mesh"), "postgres://remora@192.0.2.1:5432/mesh");
    assert.throws(() => parseStoreUrl("mysql://u:hunter2@192.0.2.1/db"), (e) => isRemoraError(e, "ERR_STORE") && !e.message.includes("hunter2") && /not a postgres:\/\/ URL/.test(e.message));
    assert.throws(() => parseStoreUrl("not a url"), (e) => isRemoraError(e, "ERR_STORE"));
  });
});
