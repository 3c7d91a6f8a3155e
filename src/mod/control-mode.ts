// The control form of createMesh({ control }): enroll with a join token like a sidecar
// (the key never leaves this process), register as a pure client (no inbound address),
// then keep the certificate renewed and the mesh view current from the config watch: by
// default on-demand (only the names this program calls, plus `destinations`), like a sidecar.

import type { Clock, Random } from "../core/clock.ts";
import { RemoraError } from "../core/errors.ts";
import { parseCertificatesPem, spiffeIdOf } from "../core/identity/certificate-info.ts";
import { parseSpiffeId } from "../core/identity/spiffe-id.ts";
import type { Runtime, TlsMaterial } from "../runtime/types.ts";
import { createControlClient, type ControlClient } from "../sidecar/control-client.ts";
import { createControlTransport } from "../sidecar/control/transport.ts";
import { createSubscriptions } from "../sidecar/control/subscriptions.ts";
import type { Logger } from "../sidecar/logger.ts";
import type { MeshClient, MeshView } from "./mesh-client.ts";

export interface ControlOptions {
  /** The control plane, https://host:port. */
  url: string | URL;
  /** The mesh root its certificate chains to: PEM text, or a file path. */
  ca: string;
  /** A join token from `remora token --service NAME`. */
  token: string;
  /** The service this program calls as (its SPIFFE ID's sa/ part). */
  service: string;
  namespace?: string;
  /** Default: the trust domain named in the root. */
  trustDomain?: string;
  /** Registry id; default <service>-embed-<random>. */
  proxyId?: string;
  /** Destinations watched from the start; others are discovered on their first call. */
  destinations?: readonly string[];
  /** Receive the whole mesh's config instead of only the destinations called (default false). */
  wholeMesh?: boolean;
  /** How long a call to a new name waits for discovery, ms (default 5000). */
  discoveryTimeoutMs?: number;
  /** A discovered name not called for this long is no longer watched, ms (default 1 h; 0: never). */
  unwatchAfterMs?: number;
}

export interface ControlSession {
  material: TlsMaterial;
  trustDomain: string;
  /** On-demand config: what the client calls before routing a name (absent with wholeMesh). */
  discover?: (name: string, signal: AbortSignal) => Promise<string | undefined>;
  /** Starts renewal, heartbeats and the watch; resolves when the first config is applied. */
  start(client: MeshClient): Promise<void>;
  close(): Promise<void>;
}

export async function enroll(o: ControlOptions, caPem: string, deps: { runtime: Runtime; clock: Clock; random: Random; log: Logger }): Promise<ControlSession> {
  const url = new URL(String(o.url));
  if (url.protocol !== "https:" || url.port === "") {
    throw new RemoraError("ERR_CONFIG_INVALID", `control.url "${String(o.url)}" is not the control plane's https://host:port URL (e.g. https://127.0.0.1:15010).`);
  }
  const [root] = parseCertificatesPem(caPem, "control.ca");
  if (!root) throw new RemoraError("ERR_PEM", "control.ca holds no CERTIFICATE block; give the mesh root the control plane's certificate chains to.");
  const rootId = spiffeIdOf(root);
  const trustDomain = o.trustDomain ?? (rootId ? parseSpiffeId(rootId).trustDomain : "cluster.local");
  const namespace = o.namespace ?? "default";
  let target: MeshClient | undefined;
  const subscriptions = o.wholeMesh
    ? undefined
    : createSubscriptions({
        clock: deps.clock,
        declared: o.destinations ?? [],
        ...(o.discoveryTimeoutMs === undefined ? {} : { timeoutMs: o.discoveryTimeoutMs }),
        ...(o.unwatchAfterMs === undefined ? {} : { unwatchAfterMs: o.unwatchAfterMs }),
      });

  const client: ControlClient = createControlClient({
    ...(subscriptions ? { onDemand: subscriptions } : {}),
    transport: (...args) => transport.transport(...args),
    clock: deps.clock,
    random: deps.random,
    log: deps.log,
    token: o.token,
    trustDomain,
    namespace,
    service: o.service,
    proxyId: o.proxyId ?? `${o.service}-embed-${crypto.randomUUID().slice(0, 8)}`,
    registration: () => ({ runtime: `${deps.runtime.name} ${deps.runtime.version}` }),
  });
  const transport = createControlTransport({ runtime: deps.runtime, url, caPem, trustDomain, material: () => client.material(), clock: deps.clock });
  let material: TlsMaterial;
  try {
    material = await client.enroll();
  } catch (e) {
    transport.close();
    throw e;
  }

  return {
    material,
    trustDomain,
    ...(subscriptions ? { discover: subscriptions.discover } : {}),
    async start(mesh) {
      target = mesh;
      client.start({
        applyMesh: (m) => target?.update(m as MeshView),
        applyDestinations: (u) => target?.patch(u),
        // A pure client serves nothing, so there is no authorization for it to enforce.
        applyAuthorization: () => {},
        setIdentity: (next) => target?.setIdentity(next),
      });
      await client.firstConfig;
    },
    async close() {
      await client.close();
      transport.close();
    },
  };
}
