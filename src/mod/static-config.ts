// The static form of createMesh({ config }): the sidecar config file's document (a YAML
// file path, or the same document as an object) reduced to what a proxyless client needs,
// identity, endpoints and policies. Listener fields are accepted and ignored.

import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import process from "node:process";
import type { Policy } from "../core/policy/types.ts";
import { RemoraError } from "../core/errors.ts";
import { parseYamlDocument } from "../core/yaml-doc.ts";
import { parsePolicies, parsePolicy } from "../core/policy/parse.ts";
import { keyMatchesCertificate } from "../core/identity/pem.ts";
import { trustBundleFromPem, validateSvid } from "../core/identity/svid.ts";
import { parseConfigDocument } from "../sidecar/config.ts";
import type { TlsMaterial } from "../runtime/types.ts";
import type { MeshView } from "./mesh-client.ts";

/** The config file's shape; `identity` fields are file paths or the PEM text itself. */
export type StaticConfig = Record<string, unknown>;

export interface LoadedStatic {
  material: TlsMaterial;
  trustDomain?: string;
  view: MeshView;
}

export async function loadStatic(config: string | StaticConfig, now: number): Promise<LoadedStatic> {
  const fromFile = typeof config === "string";
  const source = fromFile ? config : "createMesh({ config })";
  const raw = fromFile ? parseYamlDocument(await readText(config, "config file"), config, "ERR_CONFIG_INVALID") : config;
  const doc = parseConfigDocument(raw, source);
  const base = fromFile ? dirname(resolve(config)) : process.cwd();
  const pemOrFile = async (value: string, field: string) =>
    value.includes("-----BEGIN ") ? value : readText(resolve(base, value), `${field} of ${source}`);

  const material: TlsMaterial = {
    certPem: await pemOrFile(doc.identity.cert, "identity.cert"),
    keyPem: await pemOrFile(doc.identity.key, "identity.key"),
    bundlePem: await pemOrFile(doc.identity.bundle, "identity.bundle"),
  };
  await checkIdentity(material, source, doc.trust_domain, now);

  const policies: Policy[] = [];
  for (const [i, entry] of doc.policies.entries()) {
    if (typeof entry === "string") policies.push(...parsePolicies(await readText(resolve(base, entry), `policies[${i}] of ${source}`), entry));
    else policies.push(parsePolicy(entry, `${source}: policies[${i}]`));
  }
  const endpoints = Object.fromEntries(Object.entries(doc.endpoints).map(([name, eps]) => [name.toLowerCase(), eps.map((e) => ({ ...e }))]));
  return { material, view: { policies, endpoints }, ...(doc.trust_domain ? { trustDomain: doc.trust_domain } : {}) };
}

/** The same checks `remora proxy` makes before it serves: an SVID of the bundle, unexpired, with its key. */
async function checkIdentity(m: TlsMaterial, source: string, trustDomain: string | undefined, now: number): Promise<void> {
  let bundle;
  try {
    bundle = trustBundleFromPem(m.bundlePem, trustDomain);
  } catch (e) {
    throw new RemoraError("ERR_CONFIG_INVALID", `${source}: identity.bundle: ${(e as Error).message}`);
  }
  try {
    await validateSvid([m.certPem], bundle, { now, ...(trustDomain ? { trustDomain } : {}) });
  } catch (e) {
    throw new RemoraError("ERR_SVID_INVALID", `${source}: identity.cert: ${(e as Error).message}`);
  }
  if (!(await keyMatchesCertificate(m.keyPem, m.certPem).catch(() => false))) {
    throw new RemoraError("ERR_CONFIG_INVALID", `${source}: identity.key does not match identity.cert.`);
  }
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    const code = (e as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new RemoraError("ERR_FILE", `cannot read ${what} ${path}: ${why}.`);
  }
}
