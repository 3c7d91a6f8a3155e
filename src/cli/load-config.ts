// Loads a static sidecar config file: the YAML document, the PEM files it names and the
// policy files it lists, all resolved relative to the config file, and checks the
// identity before any listener opens (so a bad file is one sentence, not a crash later).

import { dirname, resolve } from "node:path";
import type { Policy } from "../core/policy/types.ts";
import type { SidecarSettings } from "../sidecar/sidecar.ts";
import { RemoraError } from "../core/errors.ts";
import { parseYamlDocument } from "../core/yaml-doc.ts";
import { parseConfigDocument, type ConfigDocument } from "../sidecar/config.ts";
import { parsePolicies, parsePolicy } from "../core/policy/parse.ts";
import { parseDuration } from "../core/duration.ts";
import { keyMatchesCertificate } from "../core/identity/pem.ts";
import { trustBundleFromPem, validateSvid } from "../core/identity/svid.ts";
import { readText } from "./files.ts";
import { limitsFromDocument } from "../sidecar/limits.ts";
import { protocolsFromDocument } from "../sidecar/protocols.ts";

export interface LoadedConfig {
  settings: SidecarSettings;
  /** Every file the config depends on, for change watching. */
  files: string[];
  /** `access_log`: whether the sidecar writes an access line per request. */
  accessLog: boolean;
}

export async function loadStaticConfig(path: string, now = Date.now()): Promise<LoadedConfig> {
  const doc = parseConfigDocument(parseYamlDocument(await readText(path, "config file"), path, "ERR_CONFIG_INVALID"), path);
  const base = dirname(path);
  const at = (p: string) => resolve(base, p);
  const files = [path, at(doc.identity.cert), at(doc.identity.key), at(doc.identity.bundle)];

  const identity = await loadIdentity(doc, at, now);
  const policies: Policy[] = [];
  for (const [i, entry] of doc.policies.entries()) {
    if (typeof entry === "string") {
      files.push(at(entry));
      policies.push(...parsePolicies(await readText(at(entry), `policies[${i}]`), entry));
    } else {
      policies.push(parsePolicy(entry, `${path}: policies[${i}]`));
    }
  }
  const seen = new Set<string>();
  for (const p of policies) {
    if (seen.has(p.route.destination)) throw new RemoraError("ERR_CONFIG_INVALID", `${path}: two policies for destination "${p.route.destination}"`);
    seen.add(p.route.destination);
  }

  let drainMs = 5000;
  if (doc.drain_timeout !== undefined) {
    try {
      drainMs = parseDuration(doc.drain_timeout);
    } catch {
      throw new RemoraError("ERR_CONFIG_INVALID", `${path}: drain_timeout: "${doc.drain_timeout}" is not a duration`);
    }
  }

  const settings: SidecarSettings = {
    identity,
    trustDomain: doc.trust_domain,
    inbound: doc.inbound ? { listen: doc.inbound.listen, app: doc.inbound.app, mode: doc.inbound.mode } : undefined,
    outbound: { listen: doc.outbound.listen },
    admin: { listen: doc.admin.listen },
    mesh: {
      policies,
      endpoints: Object.fromEntries(Object.entries(doc.endpoints).map(([name, eps]) => [name.toLowerCase(), eps.map((e) => ({ ...e }))])),
      version: new Date(now).toISOString(),
    },
    drainMs,
    limits: limitsFromDocument(doc.limits, `${path}: limits.`),
    ...(doc.protocols ? { protocols: protocolsFromDocument(doc.protocols, `${path}: protocols.`) } : {}),
    ...(doc.tracing ? { tracing: { otlpEndpoint: doc.tracing.otlp_endpoint } } : {}),
  };
  return { settings, files, accessLog: doc.access_log ?? true };
}

async function loadIdentity(doc: ConfigDocument, at: (p: string) => string, now: number) {
  const certPem = await readText(at(doc.identity.cert), "identity.cert");
  const keyPem = await readText(at(doc.identity.key), "identity.key");
  const bundlePem = await readText(at(doc.identity.bundle), "identity.bundle");
  const named = (field: string, file: string, e: unknown) =>
    new RemoraError((e as RemoraError).code ?? "ERR_CONFIG_INVALID", `${field} ${file}: ${lower((e as Error).message)}`);
  let bundle;
  try {
    bundle = trustBundleFromPem(bundlePem, doc.trust_domain);
  } catch (e) {
    throw named("identity.bundle", doc.identity.bundle, e);
  }
  try {
    await validateSvid([certPem], bundle, { now, trustDomain: doc.trust_domain });
  } catch (e) {
    throw named("identity.cert", doc.identity.cert, e);
  }
  let matches: boolean;
  try {
    matches = await keyMatchesCertificate(keyPem, certPem);
  } catch (e) {
    throw named("identity.key", doc.identity.key, e);
  }
  if (!matches) throw new RemoraError("ERR_CONFIG_INVALID", `identity.key ${doc.identity.key} does not match identity.cert ${doc.identity.cert}`);
  return { certPem, keyPem, bundlePem };
}

const lower = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
