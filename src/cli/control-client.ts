// How the admin commands (token, apply, get, delete) reach the control plane: its URL, the
// admin token and the root to verify it with, from flags, environment or its data directory.
// The server is checked by chain and SPIFFE ID (spiffe://<td>/ns/remora-system/sa/control).

import { join } from "node:path";
import { RemoraError } from "../core/errors.ts";
import { parseCertificatesPem, spiffeIdOf } from "../core/identity/certificate-info.ts";
import { parseSpiffeId } from "../core/identity/spiffe-id.ts";
import { createPeerVerifier, trustBundleFromPem } from "../core/identity/svid.ts";
import { systemClock } from "../core/system-clock.ts";
import { isRemoraError } from "../core/errors.ts";
import { ADMIN_TOKEN_FILE, ROOT_CERT_FILE } from "../control/data-dir.ts";
import { controlIdentity } from "../control/server.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { readText } from "./files.ts";

export const DEFAULT_CONTROL = "https://127.0.0.1:15010";
const REQUEST_TIMEOUT_MS = 15_000;

/** The flags every admin command takes, for node:util parseArgs. */
export const controlFlags = {
  control: { type: "string" },
  "admin-token": { type: "string" },
  data: { type: "string" },
  ca: { type: "string" },
} as const;

export interface ControlFlagValues {
  control?: string | undefined;
  "admin-token"?: string | undefined;
  data?: string | undefined;
  ca?: string | undefined;
}

export const controlHelp = `Reaching the control plane:
  --control URL       control plane (env REMORA_CONTROL; default ${DEFAULT_CONTROL})
  --admin-token T     admin token (env REMORA_ADMIN_TOKEN)
  --data DIR          the control plane's data directory: reads DIR/admin-token and DIR/root.pem
  --ca ROOT.pem       root certificate to verify the control plane with (env REMORA_CA)`;

export interface ControlClient {
  readonly url: string;
  /** Sends one admin request; answers the parsed JSON body, or throws one sentence. */
  request(method: string, path: string, body?: { json: unknown } | { text: string; contentType: string }): Promise<unknown>;
  /** Opens a streaming admin GET (NDJSON) that lasts until `signal` aborts; throws one sentence when refused. */
  stream(path: string, signal: AbortSignal): Promise<ReadableStream<Uint8Array>>;
  close(): void;
}

export async function connectControl(flags: ControlFlagValues): Promise<ControlClient> {
  const env = process.env;
  const url = (flags.control ?? env.REMORA_CONTROL ?? DEFAULT_CONTROL).replace(/\/+$/, "");
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new RemoraError("ERR_CONTROL", `--control "${url}" is not a URL (e.g. ${DEFAULT_CONTROL}).`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw new RemoraError("ERR_CONTROL", `--control "${url}" must be an https:// URL.`);
  }
  const token =
    flags["admin-token"] ?? env.REMORA_ADMIN_TOKEN ?? (flags.data ? (await readText(join(flags.data, ADMIN_TOKEN_FILE), "admin token")).trim() : undefined);
  if (!token) {
    throw new RemoraError("ERR_AUTH", "no admin token: pass --admin-token, set REMORA_ADMIN_TOKEN, or point --data at the control plane's data directory.");
  }
  const caPath = flags.ca ?? env.REMORA_CA ?? (flags.data ? join(flags.data, ROOT_CERT_FILE) : undefined);
  const secure = parsed.protocol === "https:";
  if (secure && caPath === undefined) {
    throw new RemoraError("ERR_CONTROL", "no root certificate to verify the control plane: pass --ca ROOT.pem, set REMORA_CA, or use --data DIR.");
  }
  const rootPem = caPath === undefined ? "" : await readText(caPath, "root certificate");
  let identity: string | undefined;
  let trustDomain: string | undefined;
  if (secure) {
    const [root] = parseCertificatesPem(rootPem, caPath);
    const rootId = root ? spiffeIdOf(root) : undefined;
    if (!rootId) throw new RemoraError("ERR_CONTROL", `root certificate ${caPath} carries no spiffe:// trust domain ID.`);
    trustDomain = parseSpiffeId(rootId).trustDomain;
    identity = controlIdentity(trustDomain);
  }
  const bundle = trustBundleFromPem(rootPem || "", trustDomain);
  const runtime = await loadRuntime();
  const upstream = runtime.createUpstream({
    material: () => ({ certPem: "", keyPem: "", bundlePem: rootPem }),
    verifyPeer: createPeerVerifier(() => bundle, systemClock, trustDomain),
  });
  const address = `${parsed.hostname}:${parsed.port || (secure ? "443" : "80")}`;

  const send = async (req: Request, signal: AbortSignal): Promise<Response> => {
    try {
      return await upstream.send(req, { address, ...(identity ? { identity } : {}) }, { signal, tls: secure ? "SIMPLE" : "DISABLE" });
    } catch (e) {
      const why = isRemoraError(e) ? e.message.replace(/\.$/, "") : String(e);
      throw new RemoraError("ERR_CONTROL_UNREACHABLE", `cannot reach the control plane at ${url}: ${why}.`, { cause: e });
    }
  };
  const refused = (method: string, path: string, status: number, text: string) => {
    let error = `HTTP ${status}`;
    try {
      error = (JSON.parse(text) as { error?: string }).error ?? error;
    } catch {
      // not JSON: keep the status
    }
    return new RemoraError("ERR_CONTROL_REFUSED", `the control plane at ${url} refused ${method} ${path.split("?")[0]}: ${error.replace(/\.$/, "")}.`);
  };

  return {
    url,
    async request(method, path, body) {
      const headers = new Headers({ authorization: `Bearer ${token}`, accept: "application/json" });
      let payload: string | undefined;
      if (body && "json" in body) {
        payload = JSON.stringify(body.json);
        headers.set("content-type", "application/json");
      } else if (body) {
        payload = body.text;
        headers.set("content-type", body.contentType);
      }
      const req = new Request(`${url}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) });
      const res = await send(req, AbortSignal.timeout(REQUEST_TIMEOUT_MS));
      const text = await res.text();
      if (!res.ok) throw refused(method, path, res.status, text);
      try {
        return text === "" ? undefined : JSON.parse(text);
      } catch {
        return undefined;
      }
    },
    async stream(path, signal) {
      const req = new Request(`${url}${path}`, { headers: { authorization: `Bearer ${token}`, accept: "application/x-ndjson" } });
      const res = await send(req, signal);
      if (!res.ok || res.body === null) throw refused("GET", path, res.status, await res.text().catch(() => ""));
      return res.body;
    },
    close: () => upstream.close(),
  };
}

/** Runs `fn` with a connected client and always closes its connections. */
export async function withControl<T>(flags: ControlFlagValues, fn: (c: ControlClient) => Promise<T>): Promise<T> {
  const client = await connectControl(flags);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}
