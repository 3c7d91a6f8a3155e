// The control plane's HTTP API (docs/control-api.md) as one hono app, built from injected
// state, clock, CA and keys so tests drive it with app.fetch and no sockets. The caller's
// verified SPIFFE ID arrives in the env bindings from the server layer, never from a header.

import { Hono, type Context } from "hono";
import * as v from "valibot";
import type { Clock } from "../core/clock.ts";
import { isRemoraError } from "../core/errors.ts";
import { parseDuration } from "../core/duration.ts";
import { issueSvid, parseCsr, type SigningCa } from "../core/identity/ca.ts";
import { certificateInfo } from "../core/identity/certificate-info.ts";
import { parseSpiffeId, workloadId } from "../core/identity/spiffe-id.ts";
import { validate } from "../core/validation.ts";
import type { ControlPlane } from "./control-plane.ts";
import { parseApplyBody } from "./documents.ts";
import { createResourceIndex } from "./ondemand/resources.ts";
import { parseWatchRequest, watch } from "./ondemand/watch.ts";
import { createConfigSync } from "./ondemand/sync.ts";
import { CONTENT_TYPE as METRICS_CONTENT_TYPE, type Registry } from "../core/metrics/registry.ts";
import { registerObserveRoutes, type ObserveDeps } from "./stats/routes.ts";
import type { ProxyRecord } from "./store.ts";
import { issueJoinToken, isValidName, TokenRefused, verifyJoinToken, type TokenKeys } from "./tokens.ts";

export interface ControlLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface ControlAppDeps {
  plane: ControlPlane;
  clock: Clock;
  ca: SigningCa;
  /** PEM roots handed to sidecars (several during a root rotation). */
  bundlePem: string;
  trustDomain: string;
  tokenKeys: TokenKeys;
  adminToken: string;
  /** Lifetime of issued SVIDs. */
  certTtlMs: number;
  logger: ControlLogger;
  /** Metrics gathering and tap (`GET /v1/stats`, `GET /v1/tap`); absent: those routes answer 404. */
  observe?: ObserveDeps;
  /** The control plane's own metrics (process memory), served at `GET /metrics`; absent: 404. */
  metrics?: Registry;
}

/** What the server layer knows about the connection; absent fields mean "no". */
export interface ControlBindings {
  /** The SPIFFE ID of a verified TLS client certificate. */
  peerIdentity?: string;
  /** "host:port" of the caller, for logs. */
  remote?: string;
}

type Env = { Bindings: ControlBindings };
type Ctx = Context<Env>;

const DEFAULT_WAIT_S = 30;
const MAX_WAIT_S = 60;
const MAX_TOKEN_TTL_MS = 7 * 24 * 3_600_000;

interface Workload {
  id: string;
  namespace: string;
  service: string;
}

class HttpError extends Error {
  readonly status: 400 | 401 | 403 | 404 | 409;
  readonly code: string;
  constructor(status: 400 | 401 | 403 | 404 | 409, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const tokenRequest = v.strictObject({
  service: v.string(),
  namespace: v.optional(v.string()),
  ttl: v.optional(v.string()),
});
const identityRequest = v.strictObject({ csr: v.string() });
const optionalString = v.optional(v.nullable(v.string()));
const proxyRequest = v.object({
  service: v.string(),
  namespace: v.optional(v.string()),
  address: v.optional(v.string()),
  labels: v.optional(v.record(v.string(), v.string())),
  admin: optionalString,
  runtime: optionalString,
  config_version: optionalString,
  cert_serial: optionalString,
  cert_not_after: optionalString,
});
const ackRequest = v.object({
  proxy: v.string(),
  version: v.string(),
  status: v.picklist(["ACK", "NACK"]),
  error: optionalString,
});

export function createControlApp(deps: ControlAppDeps): Hono<Env> {
  const { plane, clock, logger, trustDomain } = deps;
  const app = new Hono<Env>();

  const remote = (c: Ctx): string => c.env?.remote ?? "unknown";

  function refuse(c: Ctx, status: 401 | 403, reason: string): never {
    // One line per refused credential, with the reason and who presented it.
    logger.warn({ peer: remote(c), method: c.req.method, path: c.req.path, reason }, "credential refused");
    throw new HttpError(status, status === 401 ? "ERR_AUTH" : "ERR_FORBIDDEN", reason);
  }

  function bearer(c: Ctx): string | undefined {
    const h = c.req.header("authorization");
    if (h === undefined) return undefined;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
    return m?.[1] ?? "";
  }

  function requireAdmin(c: Ctx): void {
    const token = bearer(c);
    if (token === undefined) refuse(c, 401, "the admin API needs an Authorization: Bearer admin token");
    if (!sameSecret(token, deps.adminToken)) refuse(c, 401, "the bearer token is not this control plane's admin token");
  }

  function workloadOf(id: string): Workload | undefined {
    try {
      const { trustDomain: td, path } = parseSpiffeId(id);
      const m = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(path);
      if (td !== trustDomain || !m) return undefined;
      return { id, namespace: m[1]!, service: m[2]! };
    } catch {
      return undefined;
    }
  }

  function requireSvid(c: Ctx): Workload {
    const id = c.env?.peerIdentity;
    if (id === undefined) refuse(c, 401, "this API needs the sidecar's SVID as TLS client certificate");
    const w = workloadOf(id);
    if (!w) refuse(c, 403, `${id} is not a workload identity (spiffe://${trustDomain}/ns/<namespace>/sa/<service>)`);
    return w;
  }

  async function jsonBody<S extends v.GenericSchema>(c: Ctx, schema: S, what: string): Promise<v.InferOutput<S>> {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw new HttpError(400, "ERR_REQUEST_INVALID", `${what} body is not valid JSON.`);
    }
    return validate(schema, body, { code: "ERR_REQUEST_INVALID", source: what });
  }

  app.onError((err, c) => {
    if (err instanceof HttpError) return c.json({ error: err.message, code: err.code }, err.status);
    if (isRemoraError(err)) {
      const status = err.code === "ERR_CA" ? 500 : 400;
      return c.json({ error: err.message, code: err.code }, status);
    }
    logger.warn({ err: String((err as Error)?.stack ?? err), path: c.req.path }, "request failed");
    return c.json({ error: "the control plane failed to handle the request; see its log.", code: "ERR_INTERNAL" }, 500);
  });
  app.notFound((c) => c.json({ error: `no such API: ${c.req.method} ${c.req.path}.`, code: "ERR_NOT_FOUND" }, 404));

  // Prometheus text, unauthenticated like the sidecars' admin /metrics: it holds no secrets.
  if (deps.metrics) {
    const registry = deps.metrics;
    app.get("/metrics", () => new Response(registry.expose(), { headers: { "content-type": METRICS_CONTENT_TYPE } }));
  }

  // --- identity -----------------------------------------------------------------------

  app.get("/v1/bundle", (c) => c.json({ trust_domain: trustDomain, bundle: deps.bundlePem }));

  app.post("/v1/identity", async (c) => {
    const token = bearer(c);
    let id: string;
    if (token !== undefined) {
      try {
        const claims = await verifyJoinToken(deps.tokenKeys, token, clock.now());
        id = workloadId(trustDomain, claims.namespace, claims.service);
      } catch (e) {
        if (e instanceof TokenRefused) refuse(c, 401, `${e.message}`);
        throw e;
      }
    } else if (c.env?.peerIdentity !== undefined) {
      id = requireSvid(c).id; // renewal: the same identity as the certificate presented
    } else {
      refuse(c, 401, "identity requests need a join token (Authorization: Bearer) or the current SVID as TLS client certificate");
    }
    const { csr } = await jsonBody(c, identityRequest, "identity request");
    const parsed = await parseCsr(csr);
    const asked = parsed.requestedIds.filter((r) => r !== id);
    if (asked.length > 0) {
      // The CSR's IDs are never trusted (DESIGN.md, Identity); a mismatch is worth a line.
      logger.warn({ peer: remote(c), requested: asked, issued: id }, "CSR asked for another identity; issuing the proven one");
    }
    const cert = await issueSvid({ ca: deps.ca, spiffeId: id, publicKey: parsed.publicKey, ttlMs: deps.certTtlMs, now: clock.now() });
    const info = certificateInfo(cert);
    logger.info({ peer: remote(c), id, serial: info.serial, not_after: new Date(info.notAfter).toISOString(), via: token !== undefined ? "token" : "svid" }, "identity issued");
    return c.json({ id, cert, bundle: deps.bundlePem, not_after: new Date(info.notAfter).toISOString() });
  });

  // --- registry -----------------------------------------------------------------------

  app.put("/v1/proxies/:id", async (c) => {
    const w = requireSvid(c);
    const proxy = c.req.param("id");
    const body = await jsonBody(c, proxyRequest, "proxy registration");
    const namespace = body.namespace ?? w.namespace;
    if (body.service !== w.service || namespace !== w.namespace) {
      refuse(c, 403, `${w.id} cannot register a proxy for ${namespace}/${body.service}`);
    }
    const known = plane.proxy(proxy);
    if (known && known.identity !== w.id) refuse(c, 403, `proxy ${proxy} is registered by ${known.identity}, not ${w.id}`);
    const record: ProxyRecord = { proxy, service: w.service, namespace, identity: w.id, ...(body.address === undefined ? {} : { address: body.address }) };
    if (body.labels !== undefined && Object.keys(body.labels).length > 0) record.labels = body.labels;
    for (const k of ["admin", "runtime", "config_version", "cert_serial", "cert_not_after"] as const) {
      const value = body[k];
      if (typeof value === "string") record[k] = value;
    }
    await plane.heartbeat(record);
    return c.json({ version: plane.version });
  });

  app.delete("/v1/proxies/:id", async (c) => {
    const w = requireSvid(c);
    const proxy = c.req.param("id");
    const known = plane.proxy(proxy);
    if (!known) throw new HttpError(404, "ERR_NOT_FOUND", `proxy ${proxy} is not registered.`);
    if (known.identity !== w.id) refuse(c, 403, `proxy ${proxy} is registered by ${known.identity}, not ${w.id}`);
    await plane.removeProxy(proxy);
    return c.json({ version: plane.version });
  });

  // --- config -------------------------------------------------------------------------

  app.get("/v1/config", async (c) => {
    requireSvid(c);
    const version = c.req.query("version");
    const waitText = c.req.query("wait");
    const waitS = waitText === undefined ? DEFAULT_WAIT_S : Number(waitText);
    if (!Number.isFinite(waitS) || waitS < 0) throw new HttpError(400, "ERR_REQUEST_INVALID", `wait: "${waitText}" is not a number of seconds.`);
    if (version !== undefined && version === plane.version) {
      const changed = await plane.waitForChange(version, Math.min(waitS, MAX_WAIT_S) * 1000, c.req.raw.signal);
      if (!changed) return c.body(null, 304);
    }
    return c.body(plane.snapshotJson(), 200, { "content-type": "application/json" });
  });

  // On-demand config (v2): only the destinations the sidecar names, only what changed.
  const resources = createResourceIndex(() => plane.state());
  const sync = createConfigSync(() => clock.now());
  app.post("/v2/config", async (c) => {
    const w = requireSvid(c);
    const req = parseWatchRequest(await jsonBody(c, v.unknown(), "config watch"));
    sync.watched(w.id, w.service, req, plane.proxy(req.proxy)?.identity);
    const deps = { view: resources, waitForChange: plane.waitForChange.bind(plane), now: () => clock.now() };
    const answer = await watch(deps, req, w.service, Math.min(req.wait, MAX_WAIT_S) * 1000, c.req.raw.signal);
    return answer === undefined ? c.body(null, 304) : c.json(answer);
  });

  app.post("/v1/config/ack", async (c) => {
    const w = requireSvid(c);
    const ack = await jsonBody(c, ackRequest, "config ack");
    const known = plane.proxy(ack.proxy);
    if (known && known.identity !== w.id) refuse(c, 403, `proxy ${ack.proxy} is registered by ${known.identity}, not ${w.id}`);
    plane.recordAck(ack.proxy, { version: ack.version, status: ack.status, ...(ack.error ? { error: ack.error } : {}) });
    if (ack.status === "NACK") logger.warn({ proxy: ack.proxy, version: ack.version, error: ack.error }, "config rejected by proxy");
    return c.json({ ok: true });
  });

  // --- admin --------------------------------------------------------------------------

  app.post("/v1/tokens", async (c) => {
    requireAdmin(c);
    const body = await jsonBody(c, tokenRequest, "token request");
    const namespace = body.namespace ?? "default";
    for (const [field, value] of [["service", body.service], ["namespace", namespace]] as const) {
      if (!isValidName(value)) throw new HttpError(400, "ERR_REQUEST_INVALID", `token request: ${field}: "${value}" is not a name (lowercase letters, digits and "-").`);
    }
    let ttlMs: number;
    try {
      ttlMs = parseDuration(body.ttl ?? "1h");
    } catch (e) {
      throw new HttpError(400, "ERR_REQUEST_INVALID", `token request: ttl: ${(e as Error).message}`);
    }
    if (ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) throw new HttpError(400, "ERR_REQUEST_INVALID", `token request: ttl: "${body.ttl}" must be above 0 and at most 168h.`);
    const t = await issueJoinToken(deps.tokenKeys, { namespace, service: body.service, ttlMs, now: clock.now() });
    logger.info({ peer: remote(c), sub: `${namespace}/${body.service}`, jti: t.jti, expires_at: new Date(t.expiresAt).toISOString() }, "join token issued");
    return c.json({ token: t.token, expires_at: new Date(t.expiresAt).toISOString() });
  });

  app.put("/v1/policies", async (c) => {
    requireAdmin(c);
    const source = c.req.query("source") || "request body";
    const docs = parseApplyBody(await c.req.text(), source);
    const result = await plane.applyDocuments(docs);
    logger.info({ peer: remote(c), applied: result.applied, version: result.version }, "policies applied");
    return c.json(result);
  });

  app.get("/v1/policies", (c) => {
    requireAdmin(c);
    return c.json(plane.policies());
  });

  app.delete("/v1/policies/:destination", async (c) => {
    requireAdmin(c);
    const dest = c.req.param("destination");
    if (!(await plane.deletePolicy(dest))) throw new HttpError(404, "ERR_NOT_FOUND", `no policy or authorization for destination "${dest}".`);
    logger.info({ peer: remote(c), destination: dest, version: plane.version }, "policy deleted");
    return c.json({ deleted: dest, version: plane.version });
  });

  app.get("/v1/endpoints", (c) => {
    requireAdmin(c);
    return c.json(plane.endpoints());
  });

  app.get("/v1/services", (c) => {
    requireAdmin(c);
    return c.json(plane.services());
  });

  app.get("/v1/proxies", (c) => {
    requireAdmin(c);
    // On-demand sidecars are in sync when they hold the latest of what they watch (src/control/ondemand/sync.ts).
    return c.json(sync.judge(plane.proxies(), resources()));
  });

  if (deps.observe) registerObserveRoutes(app, deps.observe, { proxies: () => plane.proxies(), events: plane.events, clock, requireAdmin });

  return app;
}

/** Compares two secrets in time independent of where they first differ. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

