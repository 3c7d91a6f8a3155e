// One Store contract, run against the file store and PostgreSQL (a real throwaway server),
// then what only a shared store promises: replicas that never lose or double a write,
// change events, database-time lapses, one sweeper, one shared root CA.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane } from "../../src/control/control-plane.ts";
import { FileStore } from "../../src/control/file-store.ts";
import { emptyState, StoreConflict, type ControlState, type Store } from "../../src/control/store.ts";
import { PgStore } from "../../src/control/pg/pg-store.ts";
import { openPgSecrets } from "../../src/control/pg/pg-secrets.ts";
import { importStoreKey } from "../../src/control/pg/store-key.ts";
import { isRemoraError } from "../../src/core/errors.ts";
import { systemClock } from "../../src/core/system-clock.ts";
import { POSTGRES_SKIP, startPostgres, type Postgres } from "./support/postgres.ts";

let pgServer: Postgres | undefined;
let dir: string;
let dbSeq = 0;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "remora-store-"));
  if (POSTGRES_SKIP) console.warn(`store-contract: ${POSTGRES_SKIP}`);
  else pgServer = await startPostgres();
});
after(async () => {
  await pgServer?.destroy();
  await rm(dir, { recursive: true, force: true });
});

/** A fresh database per test, so suites never see each other's rows. */
async function freshDb(): Promise<string> {
  const name = `t${++dbSeq}`;
  const admin = await PgStore.open({ url: pgServer!.url });
  await admin.pool.query(`CREATE DATABASE ${name}`);
  await admin.close();
  return pgServer!.url.replace(/\/postgres$/, `/${name}`);
}

interface Kind {
  name: string;
  skip: string | false;
  /** Opens a store on fresh storage; `again` opens a second handle on the same storage. */
  fresh(): Promise<{ store: Store; again(): Promise<Store> }>;
}

const opened: Store[] = [];
const track = <S extends Store>(s: S): S => (opened.push(s), s);
after(async () => {
  for (const s of opened) await s.close?.().catch(() => {});
});

const kinds: Kind[] = [
  {
    name: "file store",
    skip: false,
    fresh: async () => {
      const d = join(dir, `file-${++dbSeq}`);
      return { store: new FileStore(d), again: async () => new FileStore(d) };
    },
  },
  {
    name: "PostgreSQL store",
    skip: POSTGRES_SKIP,
    fresh: async () => {
      const url = await freshDb();
      return { store: track(await PgStore.open({ url })), again: async () => track(await PgStore.open({ url })) };
    },
  },
];

const sample = (): ControlState => ({
  version: 2,
  policies: { payments: { route: { destination: "payments", retry_policy: { num_retries: 2 } } } },
  authorization: { payments: { authorization: { destination: "payments", allow: [{ from: "spiffe://cluster.local/ns/default/sa/orders" }] } } },
  proxies: { "orders-1": { proxy: "orders-1", service: "orders", namespace: "default", identity: "spiffe://cluster.local/ns/default/sa/orders", address: "192.0.2.1:15006" } },
  services: { payments: { namespace: "default", vip: "240.240.0.1" }, orders: { namespace: "default", vip: "240.240.0.2" } },
});

for (const kind of kinds) {
  describe(`Store contract: ${kind.name}`, { skip: kind.skip }, () => {
    test("a new store loads the empty state at version 1", async () => {
      const { store } = await kind.fresh();
      const s = await store.load();
      assert.deepEqual({ ...s, services: s.services ?? {} }, emptyState());
    });

    test("what is saved is what another handle loads", async () => {
      const { store, again } = await kind.fresh();
      await store.load();
      await store.save(sample());
      assert.deepEqual(await (await again()).load(), sample());
    });

    test("removals and changes are saved too", async () => {
      const { store, again } = await kind.fresh();
      await store.load();
      await store.save(sample());
      const next = sample();
      next.version = 3;
      delete next.policies.payments;
      delete next.proxies["orders-1"];
      next.authorization.payments = { authorization: { destination: "payments", allow: [] } };
      next.services = { orders: { namespace: "default", vip: "240.240.0.2" } };
      await store.save(next);
      assert.deepEqual(await (await again()).load(), next);
    });

    test("a control plane reopened on the store serves the same snapshot", async () => {
      const { store, again } = await kind.fresh();
      const plane = await ControlPlane.open({ store, clock: systemClock });
      await plane.applyDocuments({ policies: new Map([["payments", { route: { destination: "payments" } }]]), authorization: new Map() });
      await plane.heartbeat({ proxy: "p1", service: "payments", namespace: "default", identity: "spiffe://cluster.local/ns/default/sa/payments", address: "192.0.2.1:15006" });
      const reopened = await ControlPlane.open({ store: await again(), clock: systemClock });
      assert.equal(reopened.snapshotJson(), plane.snapshotJson());
      assert.equal(reopened.version, plane.version);
    });
  });
}

describe("shared store (PostgreSQL): several replicas", { skip: POSTGRES_SKIP }, () => {
  test("migrations run once even when replicas start together", async () => {
    const url = await freshDb();
    const stores = await Promise.all([1, 2, 3].map(() => PgStore.open({ url }).then(track)));
    const r = await stores[0]!.pool.query<{ version: number }>("SELECT version FROM remora_migrations ORDER BY version");
    assert.deepEqual(r.rows.map((x) => x.version), [1]);
  });

  test("a save based on a stale state conflicts and writes nothing", async () => {
    const url = await freshDb();
    const a = track(await PgStore.open({ url }));
    const b = track(await PgStore.open({ url }));
    await a.load();
    await b.load();
    await a.save(sample());
    const stale = sample();
    stale.policies = { other: { route: { destination: "other" } } };
    await assert.rejects(b.save(stale), StoreConflict);
    assert.deepEqual(await b.load(), sample());
  });

  test("writes racing on two replicas all land, each exactly once, and both replicas agree", async () => {
    const url = await freshDb();
    const p1 = await ControlPlane.open({ store: track(await PgStore.open({ url })), clock: systemClock });
    const p2 = await ControlPlane.open({ store: track(await PgStore.open({ url })), clock: systemClock });
    const start = Number(p1.version);
    const writes = Array.from({ length: 30 }, (_, i) => {
      const plane = i % 2 === 0 ? p1 : p2;
      return plane.applyDocuments({ policies: new Map([[`svc${i}`, { route: { destination: `svc${i}` } }]]), authorization: new Map() });
    });
    const versions = (await Promise.all(writes)).map((w) => Number(w.version));
    // One version per write: none lost (all present below), none applied twice (no extra bumps).
    assert.equal(new Set(versions).size, 30);
    assert.equal(Math.max(...versions), start + 30);
    await p1.waitForChange(String(start + 29), 5_000);
    for (const plane of [p1, p2]) {
      for (let w = 0; w < 50 && plane.version !== String(start + 30); w++) await plane.waitForChange(plane.version, 200);
      assert.equal(plane.version, String(start + 30));
      assert.equal(plane.policies().policies.length, 30);
    }
    assert.equal(p1.snapshotJson(), p2.snapshotJson());
  });

  test("a change on one replica wakes watchers on another", async () => {
    const url = await freshDb();
    const p1 = await ControlPlane.open({ store: track(await PgStore.open({ url })), clock: systemClock });
    const p2 = await ControlPlane.open({ store: track(await PgStore.open({ url })), clock: systemClock });
    const before = p2.version;
    const woke = p2.waitForChange(before, 10_000);
    await p1.applyDocuments({ policies: new Map([["payments", { route: { destination: "payments" } }]]), authorization: new Map() });
    assert.equal(await woke, true);
    assert.equal(p2.version, p1.version);
    assert.deepEqual(p2.policies(), p1.policies());
  });

  test("one sweep lease among replicas, and it moves when its holder goes", async () => {
    const url = await freshDb();
    const a = track(await PgStore.open({ url }));
    const b = track(await PgStore.open({ url }));
    assert.equal(await a.sweepLease(), true);
    assert.equal(await b.sweepLease(), false);
    await a.close();
    assert.equal(await b.sweepLease(), true);
  });

  test("lapses are judged by the database's clock, after one grace period for a new lease holder", async () => {
    const url = await freshDb();
    const s = track(await PgStore.open({ url }));
    await s.load();
    await s.save(sample());
    await s.pool.query("UPDATE remora_proxies SET last_seen = now() - interval '1 hour'");
    assert.equal(await s.sweepLease(), true);
    assert.deepEqual(await s.lapsed(60_000), [], "a new lease holder gives one grace period");
    assert.deepEqual(await s.lapsed(60_000), []);
    await s.pool.query("UPDATE remora_proxies SET last_seen = now() - interval '2 minutes'");
    assert.deepEqual(await s.lapsed(60_000), ["orders-1"]);
    await s.touch("orders-1");
    assert.deepEqual(await s.lapsed(60_000), []);
  });

  test("replicas share one root CA, stored encrypted; a wrong key is refused in one sentence", async () => {
    const url = await freshDb();
    const key = await importStoreKey(crypto.getRandomValues(new Uint8Array(32)));
    const [a, b] = [track(await PgStore.open({ url })), track(await PgStore.open({ url }))];
    const cliDir = join(dir, `cli-${dbSeq}`);
    const [sa, sb] = await Promise.all([
      openPgSecrets(a, key, { trustDomain: "cluster.local", now: Date.now(), dataDir: cliDir }),
      openPgSecrets(b, key, { trustDomain: "cluster.local", now: Date.now() }),
    ]);
    assert.equal(sa.ca.certPem, sb.ca.certPem);
    assert.equal(sa.adminToken, sb.adminToken);
    assert.equal(await readFile(join(cliDir, "root.pem"), "utf8"), sa.ca.certPem);
    const raw = await a.pool.query<{ ciphertext: Uint8Array }>("SELECT ciphertext FROM remora_secrets WHERE name = 'root_key'");
    assert.ok(!new TextDecoder().decode(raw.rows[0]!.ciphertext).includes("PRIVATE KEY"), "the root key is not stored in the clear");
    const wrong = await importStoreKey(crypto.getRandomValues(new Uint8Array(32)));
    await assert.rejects(openPgSecrets(b, wrong, { trustDomain: "cluster.local", now: Date.now() }), (e) => isRemoraError(e, "ERR_STORE") && /same --store-key-file/.test(e.message));
  });

  test("an unreachable database is named in one sentence without its password", async () => {
    const err = await PgStore.open({ url: "postgres://remora:s3cret@127.0.0.1:1/remora" }).then(
      () => assert.fail("opened"),
      (e: unknown) => e,
    );
    assert.ok(isRemoraError(err, "ERR_STORE"));
    assert.match(err.message, /^cannot connect to PostgreSQL at postgres:\/\/remora@127\.0\.0\.1:1\/remora \(/);
    assert.ok(!err.message.includes("s3cret"));
  });
});
