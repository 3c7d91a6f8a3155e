// `remora certs`: mint a development root CA and SVIDs into a folder, for the static
// config examples and tests. An existing root in the folder is reused, so services can
// be added later under the same trust.

import { mkdir, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parse, UsageError } from "./args.ts";
import { createRootCa } from "../core/identity/ca.ts";
import { loadCa } from "../core/identity/ca.ts";
import { parseDuration } from "../core/duration.ts";
import { certificateInfo } from "../core/identity/svid.ts";
import { mintSvid, type RootCa } from "./pki.ts";
import { readText } from "./files.ts";

export const usage = `remora certs --out DIR [--trust-domain cluster.local] [--namespace default] [--ttl 8760h] SERVICE...

Writes DIR/root.pem and DIR/root-key.pem (kept if present), and for each SERVICE
DIR/SERVICE.pem and DIR/SERVICE-key.pem: an SVID for spiffe://<trust-domain>/ns/<namespace>/sa/SERVICE
(ECDSA P-256, key in PKCS#8). Development use; the control plane issues production identities.`;

export async function certsCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(
    "certs",
    argv,
    {
      out: { type: "string" },
      "trust-domain": { type: "string", default: "cluster.local" },
      namespace: { type: "string", default: "default" },
      ttl: { type: "string", default: "8760h" },
      help: { type: "boolean" },
    },
    true,
  );
  if (values.help) return console.log(usage), 0;
  if (!values.out) throw new UsageError("remora certs: --out DIR is required");
  const ttlMs = parseDuration(values.ttl);
  const td = values["trust-domain"];
  await mkdir(values.out, { recursive: true });
  const rootPath = join(values.out, "root.pem");
  const rootKeyPath = join(values.out, "root-key.pem");
  let ca: RootCa;
  if (existsSync(rootPath) && existsSync(rootKeyPath)) {
    ca = await loadCa(await readText(rootPath, "root certificate"), await readText(rootKeyPath, "root key"));
    console.log(`kept    ${rootPath}`);
  } else {
    ca = await createRootCa({ trustDomain: td, ttlMs: Math.max(ttlMs, 10 * 365 * 24 * 3600_000), now: Date.now() });
    await writeFile(rootPath, ca.certPem);
    await writeFile(rootKeyPath, ca.keyPem, { mode: 0o600 });
    console.log(`wrote   ${rootPath} (spiffe://${td}, serial ${certificateInfo(ca.certPem).serial})`);
  }
  for (const service of positionals) {
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(service)) throw new UsageError(`remora certs: "${service}" is not a valid service name (lowercase letters, digits, '-' and '.')`);
    const m = await mintSvid(ca, td, values.namespace, service, ttlMs);
    await writeFile(join(values.out, `${service}.pem`), m.certPem);
    await writeFile(join(values.out, `${service}-key.pem`), m.keyPem, { mode: 0o600 });
    const info = certificateInfo(m.certPem);
    console.log(`wrote   ${join(values.out, `${service}.pem`)} (${info.id}, until ${new Date(info.notAfter).toISOString()})`);
  }
  return 0;
}
