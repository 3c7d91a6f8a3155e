// The sidecar's side of docs/control-api.md: enroll with a join token (CSR in, SVID out,
// the private key never leaves this process), renew at about half-life with the current
// SVID, register and heartbeat, and watch the config snapshot (long-poll), applying each
// valid one atomically and answering ACK, or NACK with the validation error.

import type { Clock, Random } from "../core/clock.ts";
import type { Authorization } from "../core/authz.ts";
import type { CryptoKey, CryptoKeyPair } from "../core/identity/web-crypto.ts";
import type { TlsMaterial } from "../runtime/types.ts";
import type { Logger } from "./logger.ts";
import type { MeshSettings } from "./sidecar.ts";
import { RemoraError } from "../core/errors.ts";
import { createCsr } from "../core/identity/csr-create.ts";
import { exportPrivateKeyPem, generateKeyPair } from "../core/identity/key-pair.ts";
import { certificateInfo } from "../core/identity/certificate-info.ts";
import { keyMatchesCertificate } from "../core/identity/pem.ts";
import { workloadId } from "../core/identity/spiffe-id.ts";
import { parseSnapshot } from "./control/snapshot.ts";
import { backoffDelay, createOutage, Unreachable, type BackoffOptions } from "./control/connectivity.ts";
import type { DestinationUpdate } from "./control/destinations.ts";
import { onDemandWatchLoop } from "./control/ondemand-watch.ts";
import type { Subscriptions } from "./control/subscriptions.ts";

export interface ControlResponse {
  status: number;
  /** Parsed JSON body; undefined for an empty body (304). */
  json: unknown;
}

export interface ControlRequestOptions {
  /** true: present the current SVID (mTLS); false: server-authenticated TLS only (enrollment). */
  mtls: boolean;
  /** Join token, sent as `Authorization: Bearer`. */
  token?: string;
  /** Give up on this request after so long (long-polls need more than `wait`). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One HTTP exchange with the control plane; rejects only when no answer arrived. */
export type ControlTransport = (method: string, path: string, body: unknown, options: ControlRequestOptions) => Promise<ControlResponse>;

/** What the client drives; a Sidecar is one. */
export interface ControlTarget {
  applyMesh(mesh: MeshSettings): void;
  applyAuthorization(docs: readonly Authorization[]): void;
  setIdentity(material: TlsMaterial): void;
  /** On-demand mode: O(changed) update of some destinations (a Sidecar has it). */
  applyDestinations?(update: DestinationUpdate): void;
}

export interface IdentityCrypto {
  generateKeyPair(): Promise<CryptoKeyPair>;
  createCsr(options: { keys: CryptoKeyPair; spiffeId: string }): Promise<string>;
  exportPrivateKeyPem(key: CryptoKey): Promise<string>;
  keyMatchesCertificate(keyPem: string, certPem: string): Promise<boolean>;
}

export interface Registration {
  /** host:port of the inbound listener; absent for a pure client (no inbound). */
  address?: string;
  admin?: string;
  runtime: string;
  /** Endpoint labels for policy subsets (`--label version=v2`). */
  labels?: Record<string, string>;
}

export interface ControlClientDeps {
  transport: ControlTransport;
  clock: Clock;
  random: Random;
  log: Logger;
  crypto?: IdentityCrypto;
  token: string;
  trustDomain: string;
  namespace: string;
  service: string;
  proxyId: string;
  /** Read at each heartbeat. */
  registration: () => Registration;
  /** Default 5 s (the control plane drops an entry after 15 s without one). */
  heartbeatMs?: number;
  /** Long-poll `wait` in seconds. Default 30. */
  pollWaitSeconds?: number;
  backoff?: BackoffOptions;
  /** On-demand mode (`POST /v2/config`): only these destinations, growing as the app calls new names. Absent: the whole-mesh snapshot (v1). */
  onDemand?: Subscriptions;
}

export interface ControlClient {
  /** Gets the first SVID with the join token, retrying while the control plane is unreachable. */
  enroll(): Promise<TlsMaterial>;
  /** The SVID in use (undefined before enrollment). */
  material(): TlsMaterial | undefined;
  /** Starts renewal, heartbeats and the config watch, driving `target`. */
  start(target: ControlTarget): void;
  /** Resolves when the first snapshot has been applied. */
  readonly firstConfig: Promise<void>;
  /** The version of the snapshot applied last. */
  configVersion(): string | undefined;
  /** Stops every loop and deregisters (best effort). */
  close(): Promise<void>;
}

const defaultCrypto: IdentityCrypto = { generateKeyPair, createCsr, exportPrivateKeyPem, keyMatchesCertificate };
/** ±5 % around half-life, so sidecars issued together do not all renew in the same second. */
const RENEW_AT = 0.5;
const RENEW_JITTER = 0.05;

export function createControlClient(d: ControlClientDeps): ControlClient {
  const { clock, log } = d;
  const crypto = d.crypto ?? defaultCrypto;
  const identity = workloadId(d.trustDomain, d.namespace, d.service);
  const outage = createOutage(log, () => clock.now());
  const stop = new AbortController();
  const waitSeconds = d.pollWaitSeconds ?? 30;
  const heartbeatMs = d.heartbeatMs ?? 5000;
  let material: TlsMaterial | undefined;
  let cert: { serial: string; notBefore: number; notAfter: number } | undefined;
  let applied: string | undefined;
  let loops: Promise<void>[] = [];
  let configured!: () => void;
  const firstConfig = new Promise<void>((resolve) => (configured = resolve));

  const sleep = (ms: number) => clock.sleep(ms, stop.signal);
  const backoff = (attempt: number) => sleep(backoffDelay(attempt, d.random, d.backoff));

  async function call(method: string, path: string, body: unknown, options: ControlRequestOptions): Promise<ControlResponse> {
    let res: ControlResponse;
    try {
      res = await d.transport(method, path, body, { ...options, signal: options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal });
    } catch (e) {
      // Our own shutdown, or the caller cancelled (a new subscription): not an outage.
      if (stop.signal.aborted || options.signal?.aborted) throw e;
      const reason = (e as Error)?.message ?? String(e);
      outage.failed(reason);
      throw new Unreachable(reason);
    }
    if (res.status >= 500) {
      const reason = `${method} ${path.split("?")[0]} answered ${res.status}${errorOf(res) ? `: ${errorOf(res)}` : ""}`;
      outage.failed(reason);
      throw new Unreachable(reason);
    }
    outage.ok();
    return res;
  }

  async function requestSvid(options: ControlRequestOptions, refusal: string): Promise<TlsMaterial> {
    const keys = await crypto.generateKeyPair();
    const csr = await crypto.createCsr({ keys, spiffeId: identity });
    const res = await call("POST", "/v1/identity", { csr }, options);
    if (res.status !== 200) {
      throw new RemoraError("ERR_CONTROL_REFUSED", `${refusal}: ${errorOf(res) ?? `status ${res.status}`}`);
    }
    const body = res.json as { cert?: unknown; bundle?: unknown } | undefined;
    if (typeof body?.cert !== "string" || typeof body.bundle !== "string") {
      throw new RemoraError("ERR_CONTROL_REFUSED", "the control plane answered POST /v1/identity without a cert and bundle");
    }
    const info = certificateInfo(body.cert);
    if (info.id !== identity) {
      throw new RemoraError("ERR_CONTROL_REFUSED", `the control plane issued a certificate for ${info.id ?? "no SPIFFE ID"}, not ${identity}`);
    }
    const keyPem = await crypto.exportPrivateKeyPem(keys.privateKey);
    if (!(await crypto.keyMatchesCertificate(keyPem, body.cert))) {
      throw new RemoraError("ERR_CONTROL_REFUSED", "the control plane issued a certificate for a key other than the one in this sidecar's CSR");
    }
    return { certPem: body.cert, keyPem, bundlePem: body.bundle };
  }

  function hold(next: TlsMaterial): void {
    material = next;
    const info = certificateInfo(next.certPem);
    // Half-life counts from when the certificate arrived: the CA backdates notBefore for
    // clock skew (a minute), which would otherwise pull renewal of a short-lived
    // certificate forward to almost at once.
    cert = { serial: info.serial, notBefore: Math.max(info.notBefore, clock.now()), notAfter: info.notAfter };
  }

  async function enroll(): Promise<TlsMaterial> {
    for (let attempt = 0; ; attempt++) {
      try {
        hold(await requestSvid({ mtls: false, token: d.token }, "the control plane refused the join token"));
        log.info({ identity, serial: cert?.serial, not_after: iso(cert?.notAfter) }, "enrolled with the control plane");
        return material!;
      } catch (e) {
        if (!(e instanceof Unreachable)) throw e;
        await backoff(attempt);
      }
    }
  }

  async function renewLoop(target: ControlTarget): Promise<void> {
    for (;;) {
      const c = cert!;
      const lifetime = c.notAfter - c.notBefore;
      const at = c.notBefore + lifetime * (RENEW_AT + (d.random() * 2 - 1) * RENEW_JITTER);
      await sleep(Math.max(0, at - clock.now()));
      for (let attempt = 0; ; attempt++) {
        try {
          const next = await requestSvid({ mtls: true }, "the control plane refused to renew this sidecar's certificate");
          hold(next);
          target.setIdentity(next);
          break;
        } catch (e) {
          if (stop.signal.aborted) return;
          // Keep the current certificate and try again; it stays valid until notAfter.
          if (!(e instanceof Unreachable)) log.error({ error: (e as Error).message }, "certificate renewal failed");
          await backoff(attempt);
        }
      }
    }
  }

  async function heartbeatLoop(): Promise<void> {
    let lastProblem: string | undefined;
    for (;;) {
      const r = d.registration();
      const body = {
        service: d.service,
        namespace: d.namespace,
        ...(r.address === undefined ? {} : { address: r.address }),
        ...(r.admin === undefined ? {} : { admin: r.admin }),
        ...(r.labels === undefined ? {} : { labels: r.labels }),
        runtime: r.runtime,
        config_version: applied ?? null,
        cert_serial: cert?.serial ?? null,
        cert_not_after: cert ? iso(cert.notAfter) : null,
      };
      try {
        const res = await call("PUT", `/v1/proxies/${encodeURIComponent(d.proxyId)}`, body, { mtls: true, timeoutMs: heartbeatMs * 2 });
        const problem = res.status >= 300 ? `registration refused (${res.status}): ${errorOf(res) ?? "no reason given"}` : undefined;
        // A refusal repeats every beat; say it when it starts or changes, not every 5 s.
        if (problem !== undefined && problem !== lastProblem) log.error({ proxy: d.proxyId }, problem);
        lastProblem = problem;
      } catch (e) {
        if (stop.signal.aborted) return;
      }
      await sleep(heartbeatMs);
    }
  }

  async function ack(version: string, error?: string): Promise<void> {
    const body = { proxy: d.proxyId, version, status: error === undefined ? "ACK" : "NACK", ...(error === undefined ? {} : { error }) };
    try {
      await call("POST", "/v1/config/ack", body, { mtls: true, timeoutMs: 10_000 });
    } catch {
      // The next heartbeat still reports the version in use.
    }
  }

  async function watchLoop(target: ControlTarget): Promise<void> {
    let polled: string | undefined;
    for (let attempt = 0; ; ) {
      let res: ControlResponse;
      try {
        const query = `proxy=${encodeURIComponent(d.proxyId)}${polled === undefined ? "" : `&version=${encodeURIComponent(polled)}`}&wait=${waitSeconds}`;
        res = await call("GET", `/v1/config?${query}`, undefined, { mtls: true, timeoutMs: (waitSeconds + 15) * 1000 });
      } catch (e) {
        if (stop.signal.aborted) return;
        await backoff(attempt++);
        continue;
      }
      attempt = 0;
      if (res.status === 304) continue;
      if (res.status !== 200) {
        log.error({ status: res.status, error: errorOf(res) }, "the control plane refused the config watch");
        await backoff(attempt++);
        continue;
      }
      const version = (res.json as { version?: unknown } | undefined)?.version;
      if (typeof version !== "string" || version === "") {
        log.error({}, "the control plane sent a config snapshot without a version; ignoring it");
        await backoff(attempt++);
        continue;
      }
      // Poll from this version even when it is refused, so the same bad snapshot is not sent again at once.
      polled = version;
      let error: string | undefined;
      try {
        const snap = parseSnapshot(res.json);
        // applyMesh may still refuse (it rebuilds the pipeline); authorization cannot, so it goes second.
        target.applyMesh({ policies: snap.policies, endpoints: snap.endpoints, version: snap.version, ...(snap.services ? { services: snap.services } : {}) });
        target.applyAuthorization(snap.authorization);
        applied = snap.version;
        configured();
      } catch (e) {
        error = (e as Error)?.message ?? String(e);
        log.error({ version, error, kept: applied ?? null }, "config snapshot rejected; keeping the last good config");
      }
      await ack(version, error);
    }
  }

  function onDemandWatch(subscriptions: Subscriptions, target: ControlTarget): Promise<void> {
    const done = (version: string): void => {
      applied = version;
      configured();
    };
    return onDemandWatchLoop({ call, subscriptions, proxyId: d.proxyId, waitSeconds, log, backoff, stopped: stop.signal, ack, applied: done }, target);
  }

  const quietly = (p: Promise<void>) =>
    p.catch((e: unknown) => {
      if (!stop.signal.aborted) log.error({ error: (e as Error)?.message ?? String(e) }, "control-plane client loop stopped");
    });

  return {
    enroll,
    material: () => material,
    firstConfig,
    configVersion: () => applied,
    start(target) {
      if (material === undefined) throw new Error("createControlClient: start() needs enroll() first");
      const watch = d.onDemand === undefined ? watchLoop(target) : onDemandWatch(d.onDemand, target);
      loops = [quietly(renewLoop(target)), quietly(heartbeatLoop()), quietly(watch)];
    },
    async close() {
      stop.abort(new DOMException("the sidecar is shutting down", "AbortError"));
      await Promise.all(loops);
      if (material === undefined) return;
      try {
        await d.transport("DELETE", `/v1/proxies/${encodeURIComponent(d.proxyId)}`, undefined, { mtls: true, timeoutMs: 2000 });
      } catch {
        // Best effort: the registry drops the entry once its heartbeat lapses.
      }
    },
  };
}

function errorOf(res: ControlResponse): string | undefined {
  const e = (res.json as { error?: unknown } | undefined)?.error;
  return typeof e === "string" ? e.replace(/\.$/, "") : undefined;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
