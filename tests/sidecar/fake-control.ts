// An in-memory control plane for the control client's tests: a real CA (Web Crypto), the
// HTTP routes of docs/control-api.md as a transport function, and no sockets. Real crypto
// runs off the event loop, so `drive()` advances fake time only when no crypto is in flight.

import { FakeClock } from "../../src/core/fake-clock.ts";
import { createCsr, createRootCa, exportPrivateKeyPem, generateKeyPair, issueSvid, parseCsr, type RootCa } from "../../src/core/identity/ca.ts";
import { keyMatchesCertificate } from "../../src/core/identity/pem.ts";
import type { ControlRequestOptions, ControlResponse, ControlTransport, IdentityCrypto } from "../../src/sidecar/control-client.ts";
import type { Logger } from "../../src/sidecar/logger.ts";

export const TD = "cluster.local";
export const START = Date.UTC(2030, 0, 1);

export interface Call {
  at: number;
  method: string;
  path: string;
  body: unknown;
  options: ControlRequestOptions;
}

export class FakeControl {
  readonly clock = new FakeClock(START);
  readonly calls: Call[] = [];
  readonly snapshots: unknown[] = [];
  ca!: RootCa;
  ttlMs = 60 * 60_000;
  down = false;
  issuedFor: string | undefined = `spiffe://${TD}/ns/default/sa/payments`;
  #busy = 0;

  async init(): Promise<this> {
    this.ca = await createRootCa({ trustDomain: TD, ttlMs: 365 * 86_400_000, now: START });
    return this;
  }

  /** Wraps a real async crypto operation so drive() lets it finish before moving time. */
  busy<T>(p: Promise<T>): Promise<T> {
    this.#busy++;
    return p.finally(() => this.#busy--);
  }

  readonly crypto: IdentityCrypto = {
    generateKeyPair: () => this.busy(generateKeyPair()),
    createCsr: (o) => this.busy(createCsr(o)),
    exportPrivateKeyPem: (k) => this.busy(exportPrivateKeyPem(k)),
    keyMatchesCertificate: (k, c) => this.busy(keyMatchesCertificate(k, c)),
  };

  readonly transport: ControlTransport = async (method, path, body, options) => {
    this.calls.push({ at: this.clock.now(), method, path, body, options });
    if (this.down) throw new Error("connect ECONNREFUSED 192.0.2.10:15010");
    const route = `${method} ${path.split("?")[0]}`;
    if (route === "POST /v1/identity") return this.busy(this.#identity(body, options));
    if (route === "GET /v1/config") {
      const next = this.snapshots.shift();
      if (next !== undefined) return { status: 200, json: next };
      const wait = Number(new URLSearchParams(path.split("?")[1]).get("wait") ?? 30);
      await this.clock.sleep(wait * 1000, options.signal);
      // A control plane that died during the long-poll never answers it.
      if (this.down) throw new Error("socket hang up");
      return { status: 304, json: undefined };
    }
    return { status: 200, json: {} };
  };

  async #identity(body: unknown, options: ControlRequestOptions): Promise<ControlResponse> {
    if (!options.mtls && options.token !== "good-token") return { status: 401, json: { error: "the join token has expired.", code: "ERR_TOKEN" } };
    const { publicKey } = await parseCsr((body as { csr: string }).csr);
    const cert = await issueSvid({ ca: this.ca, spiffeId: this.issuedFor!, publicKey, ttlMs: this.ttlMs, now: this.clock.now() });
    return { status: 200, json: { id: this.issuedFor, cert, bundle: this.ca.certPem, not_after: "" } };
  }

  of(method: string, path: string): Call[] {
    return this.calls.filter((c) => c.method === method && c.path.split("?")[0] === path);
  }

  /**
   * Runs until `done()` holds: lets real crypto finish, then jumps fake time to the next
   * timer. Throws if the condition is never reached within `maxSteps` advances.
   */
  async drive(done: () => boolean, maxSteps = 20_000): Promise<void> {
    for (let step = 0; step < maxSteps; step++) {
      await new Promise((r) => setTimeout(r, 0));
      if (this.#busy > 0) {
        step--;
        continue;
      }
      if (done()) return;
      const at = this.clock.nextTimerAt();
      if (at === undefined) throw new Error("drive: nothing scheduled and the condition does not hold");
      this.clock.advanceTo(at);
    }
    throw new Error(`drive: condition not reached by ${new Date(this.clock.now()).toISOString()}`);
  }
}

export interface LogLine {
  level: "info" | "warn" | "error";
  msg: string;
  obj: object;
}

export function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at = (level: LogLine["level"]) => (obj: object, msg = "") => void lines.push({ level, msg, obj });
  return { lines, info: at("info"), warn: at("warn"), error: at("error") };
}
