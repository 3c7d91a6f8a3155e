// `remora control` assembled: data directory, file store, state, hono app, and the TLS
// listener with the control plane's own SVID (renewed at half-life) and the registry sweep.

import { isIP } from "node:net";
import type { Clock } from "../core/clock.ts";
import type { CryptoKey } from "../core/identity/web-crypto.ts";
import { generateKeyPair, exportPrivateKeyPem, issueSvid } from "../core/identity/ca.ts";
import { certificateInfo } from "../core/identity/certificate-info.ts";
import { workloadId } from "../core/identity/spiffe-id.ts";
import { createPeerVerifier, trustBundleFromPem } from "../core/identity/svid.ts";
import { systemClock } from "../core/system-clock.ts";
import { RemoraError } from "../core/errors.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { parseHostPort } from "../runtime/node/address.ts";
import type { TlsMaterial } from "../runtime/types.ts";
import { createProcessMemoryReader } from "../runtime/process-memory.ts";
import { Registry } from "../core/metrics/registry.ts";
import { registerProcessMetrics } from "../runtime/process-memory.ts";
import { createControlApp, type ControlLogger } from "./app.ts";
import { ControlPlane } from "./control-plane.ts";
import { openDataDir } from "./data-dir.ts";
import { FileStore } from "./file-store.ts";
import { StatsCollector } from "./stats/collector.ts";
import type { Store } from "./store.ts";

export const CONTROL_NAMESPACE = "remora-system";
export const CONTROL_SERVICE = "control";
const SWEEP_INTERVAL_MS = 1_000;

export interface ControlServerOptions {
  dataDir: string;
  listen: string;
  trustDomain: string;
  certTtlMs: number;
  logger: ControlLogger;
  lapseMs?: number;
  clock?: Clock;
  /** Defaults to the file store in dataDir. */
  store?: Store;
  /** Service VIP range (default 240.240.0.0/16). */
  serviceCidr?: string;
  /** postgres://… : state and secrets shared with other replicas (src/control/pg/); dataDir then only receives root.pem and admin-token. */
  storeUrl?: string;
  /** Encrypts the secrets in the shared store; required with storeUrl. */
  storeKey?: CryptoKey;
}

export interface ControlServer {
  readonly address: string;
  readonly plane: ControlPlane;
  close(): Promise<void>;
}

/** The control plane's own /metrics: its process memory, so a soak or an operator can watch it. */
function ownMetrics(): Registry {
  const registry = new Registry();
  registerProcessMetrics(registry, createProcessMemoryReader());
  return registry;
}

export function controlIdentity(trustDomain: string): string {
  return workloadId(trustDomain, CONTROL_NAMESPACE, CONTROL_SERVICE);
}

export async function startControlServer(o: ControlServerOptions): Promise<ControlServer> {
  const clock = o.clock ?? systemClock;
  const shared = o.storeUrl === undefined ? undefined : await openShared(o, clock.now());
  const data = shared?.data ?? (await openDataDir(o.dataDir, { trustDomain: o.trustDomain, now: clock.now() }));
  const plane = await ControlPlane.open({ store: shared?.store ?? o.store ?? new FileStore(o.dataDir), clock, ...(o.lapseMs === undefined ? {} : { lapseMs: o.lapseMs }), ...(o.serviceCidr === undefined ? {} : { serviceCidr: o.serviceCidr }) });
  const bundlePem = data.ca.certPem;
  const bundle = trustBundleFromPem(bundlePem, o.trustDomain);
  // Sidecar admin servers speak plain HTTP (loopback, or the pod address).
  const scrapeFetch = (input: string, init?: RequestInit) => fetch(input, init);
  const stats = new StatsCollector({ proxies: () => plane.proxies(), events: plane.events, clock, fetch: scrapeFetch });
  const app = createControlApp({
    plane,
    clock,
    ca: data.ca,
    bundlePem,
    trustDomain: o.trustDomain,
    tokenKeys: data.tokenKeys,
    adminToken: data.adminToken,
    certTtlMs: o.certTtlMs,
    logger: o.logger,
    observe: { stats, fetch: scrapeFetch },
    metrics: ownMetrics(),
  });

  const { host } = parseHostPort(o.listen, "--listen");
  const ipAddresses = isIP(host) !== 0 && host !== "0.0.0.0" && host !== "::" ? [host] : [];
  const id = controlIdentity(o.trustDomain);
  const issueOwn = async (): Promise<{ material: TlsMaterial; notAfter: number; notBefore: number }> => {
    const keys = await generateKeyPair();
    const certPem = await issueSvid({ ca: data.ca, spiffeId: id, publicKey: keys.publicKey, ttlMs: o.certTtlMs, now: clock.now(), dnsNames: ["localhost"], ipAddresses });
    const info = certificateInfo(certPem);
    return { material: { certPem, keyPem: await exportPrivateKeyPem(keys.privateKey), bundlePem }, notAfter: info.notAfter, notBefore: clock.now() };
  };
  let own = await issueOwn();

  const runtime = await loadRuntime();
  const listener = await runtime.serve({
    listen: o.listen,
    // Only the listener's verified client certificate reaches the app, as env bindings.
    handler: async (req, info) =>
      app.fetch(req, {
        remote: info.remote,
        ...(info.peerIdentity === undefined ? {} : { peerIdentity: info.peerIdentity }),
      }),
    tls: {
      material: () => own.material,
      verifyPeer: createPeerVerifier(() => bundle, clock, o.trustDomain),
      mode: "STRICT",
      clientCert: "request",
      onRefused: (reason, remote) => o.logger.warn({ peer: remote, reason }, "credential refused"),
    },
  });

  const stop = new AbortController();
  const renew = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      await clock.sleep(Math.max(1_000, (own.notAfter - own.notBefore) / 2), stop.signal);
      own = await issueOwn();
      listener.reloadTls();
      o.logger.info({ id, not_after: new Date(own.notAfter).toISOString() }, "control plane certificate renewed");
    }
  };
  const sweep = async (): Promise<void> => {
    while (!stop.signal.aborted) {
      await clock.sleep(SWEEP_INTERVAL_MS, stop.signal);
      try {
        const lapsed = await plane.sweep();
        if (lapsed.length > 0) o.logger.info({ proxies: lapsed, version: plane.version }, "proxies lapsed (no heartbeat)");
      } catch (err) {
        o.logger.warn({ err: String(err) }, "registry sweep failed; retrying");
      }
    }
  };
  const background = (task: Promise<void>, what: string) =>
    task.catch((err: unknown) => {
      if (!stop.signal.aborted) o.logger.warn({ err: String(err) }, `${what} stopped`);
    });
  background(renew(), "certificate renewal");
  background(sweep(), "registry sweep");
  background(stats.run(stop.signal), "metrics gathering");

  o.logger.info(
    { address: listener.address, trust_domain: o.trustDomain, data: o.dataDir, ...(shared ? { store: shared.store.where } : {}), created: data.created, id, version: plane.version },
    "control plane ready",
  );
  return {
    address: listener.address,
    plane,
    async close() {
      stop.abort();
      await listener.close(1_000);
      await shared?.store.close();
    },
  };
}

async function openShared(o: ControlServerOptions, now: number) {
  if (o.storeKey === undefined) throw new RemoraError("ERR_STORE", "a shared store needs --store-key-file FILE or REMORA_STORE_KEY to encrypt the CA and token keys.");
  // Loaded only when asked for, so the default file store never pulls in the pg driver.
  const { openSharedState } = await import("./pg/open.ts");
  return openSharedState({ url: o.storeUrl!, key: o.storeKey, trustDomain: o.trustDomain, now, dataDir: o.dataDir, logger: o.logger });
}
