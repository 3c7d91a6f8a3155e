// Test PKI minted with the openssl CLI into a temp dir: a cluster.local root with SPIFFE
// leaves for orders and payments, and a second root (other.domain) with its own leaf.

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { X509Certificate } from "node:crypto";
import type { TlsMaterial } from "../../../src/runtime/types.ts";

export const ORDERS_ID = "spiffe://cluster.local/ns/default/sa/orders";
export const PAYMENTS_ID = "spiffe://cluster.local/ns/default/sa/payments";
export const OTHER_ID = "spiffe://other.domain/ns/default/sa/orders";

export interface Leaf {
  certPem: string;
  keyPem: string;
  /** Hex serial as node:crypto reports it (upper case, no separators). */
  serial: string;
}

export interface TestPki {
  rootPem: string;
  otherRootPem: string;
  orders: Leaf;
  payments: Leaf;
  /** A second payments certificate (new key, new serial) for rotation tests. */
  paymentsRotated: Leaf;
  /** Leaf signed by the other root, identity OTHER_ID. */
  stranger: Leaf;
  material(leaf: Leaf, bundlePem?: string): TlsMaterial;
  cleanup(): void;
}

export function mintTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "remora-pki-"));
  const run = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

  const root = (name: string, org: string) => {
    run(["req", "-x509", ...ec, "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "1", "-subj", `/O=${org}/CN=${org} root`,
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    return readFileSync(join(dir, `${name}.pem`), "utf8");
  };
  let serialCounter = 0x1000;
  const leaf = (name: string, ca: string, uri: string): Leaf => {
    writeFileSync(join(dir, `${name}.ext`), [
      `subjectAltName=critical,URI:${uri}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature,keyAgreement",
      "extendedKeyUsage=serverAuth,clientAuth",
      "subjectKeyIdentifier=hash",
      "authorityKeyIdentifier=keyid",
    ].join("\n"));
    run(["req", "-new", ...ec, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", "/O=remora-test"]);
    run(["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.pem`, "-CAkey", `${ca}.key`, "-set_serial", String(++serialCounter),
      "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.pem`]);
    const certPem = readFileSync(join(dir, `${name}.pem`), "utf8");
    return { certPem, keyPem: readFileSync(join(dir, `${name}.key`), "utf8"), serial: new X509Certificate(certPem).serialNumber };
  };

  const rootPem = root("root", "cluster.local");
  const otherRootPem = root("other", "other.domain");
  const pki: TestPki = {
    rootPem,
    otherRootPem,
    orders: leaf("orders", "root", ORDERS_ID),
    payments: leaf("payments", "root", PAYMENTS_ID),
    paymentsRotated: leaf("payments2", "root", PAYMENTS_ID),
    stranger: leaf("stranger", "other", OTHER_ID),
    material: (l, bundlePem = rootPem) => ({ certPem: l.certPem, keyPem: l.keyPem, bundlePem }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  return pki;
}
