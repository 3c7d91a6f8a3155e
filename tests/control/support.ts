// A control plane app wired for hermetic tests: in-memory store, fake clock, a fresh CA and
// token key, and a logger that records what it would have written.

import { FakeClock } from "../../src/core/fake-clock.ts";
import { createCsr, createRootCa, generateKeyPair, issueSvid } from "../../src/core/identity/ca.ts";
import { createControlApp, type ControlBindings } from "../../src/control/app.ts";
import { ControlPlane } from "../../src/control/control-plane.ts";
import { MemoryStore, type Store } from "../../src/control/store.ts";
import type { TokenKeys } from "../../src/control/tokens.ts";

export const TD = "cluster.local";
export const ADMIN = "admin-secret-for-tests";
export const T0 = Date.parse("2026-01-01T00:00:00Z");

export interface LogLine {
  level: "info" | "warn";
  obj: Record<string, unknown>;
  msg: string;
}

export async function setup(o: { store?: Store; lapseMs?: number } = {}) {
  const clock = new FakeClock(T0);
  const ca = await createRootCa({ trustDomain: TD, ttlMs: 365 * 24 * 3_600_000, now: T0 });
  const tokenKeys: TokenKeys = await generateKeyPair();
  const store = o.store ?? new MemoryStore();
  const plane = await ControlPlane.open({ store, clock, ...(o.lapseMs === undefined ? {} : { lapseMs: o.lapseMs }) });
  const logs: LogLine[] = [];
  const logger = {
    info: (obj: object, msg: string) => void logs.push({ level: "info", obj: obj as Record<string, unknown>, msg }),
    warn: (obj: object, msg: string) => void logs.push({ level: "warn", obj: obj as Record<string, unknown>, msg }),
  };
  const app = createControlApp({ plane, clock, ca, bundlePem: ca.certPem, trustDomain: TD, tokenKeys, adminToken: ADMIN, certTtlMs: 3_600_000, logger });

  const call = (method: string, path: string, init: { body?: unknown; token?: string; peer?: string; text?: string } = {}) => {
    const headers: Record<string, string> = {};
    if (init.token !== undefined) headers.authorization = `Bearer ${init.token}`;
    let body: string | undefined;
    if (init.text !== undefined) body = init.text;
    else if (init.body !== undefined) {
      body = JSON.stringify(init.body);
      headers["content-type"] = "application/json";
    }
    const env: ControlBindings = { remote: "192.0.2.9:40000", ...(init.peer === undefined ? {} : { peerIdentity: init.peer }) };
    return Promise.resolve(app.fetch(new Request(`https://control.test${path}`, { method, headers, ...(body === undefined ? {} : { body }) }), env));
  };
  const admin = (method: string, path: string, init: { body?: unknown; text?: string } = {}) => call(method, path, { ...init, token: ADMIN });
  return { clock, ca, tokenKeys, plane, app, logs, call, admin, store };
}

export async function csrFor(spiffeId: string) {
  const keys = await generateKeyPair();
  return { keys, csr: await createCsr({ keys, spiffeId }) };
}

export const id = (ns: string, svc: string) => `spiffe://${TD}/ns/${ns}/sa/${svc}`;

export { issueSvid };

/** Lets pending promise continuations run (no timers, no real time). */
export async function flush(rounds = 200): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}
