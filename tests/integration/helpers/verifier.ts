// A stand-in PeerVerifier for adapter tests: reads the leaf's URI SAN with node:crypto and
// compares it with the expected SPIFFE ID. (The real SVID verifier lives in src/core/identity.)

import { X509Certificate } from "node:crypto";
import { RemoraError } from "../../../src/core/errors.ts";
import type { PeerVerifier } from "../../../src/runtime/types.ts";

export interface CountingVerifier {
  verify: PeerVerifier;
  /** How many chains were verified (once per connection is the contract). */
  calls: number;
}

/** `allow`, when given, lists the only identities accepted (server-side authorization). */
export function sanVerifier(allow?: string[]): CountingVerifier {
  const state: CountingVerifier = {
    calls: 0,
    verify: async (chainDer, expected) => {
      state.calls++;
      const leaf = chainDer[0];
      if (!leaf) throw new RemoraError("ERR_SVID_INVALID", "peer presented no certificate");
      const uri = new X509Certificate(leaf).subjectAltName
        ?.split(", ")
        .find((san) => san.startsWith("URI:spiffe://"))
        ?.slice(4);
      if (!uri) throw new RemoraError("ERR_SVID_INVALID", "peer certificate has no SPIFFE ID");
      if (expected !== undefined && uri !== expected) {
        throw new RemoraError("ERR_PEER_IDENTITY", `peer is ${uri}, not ${expected}`);
      }
      if (allow && !allow.includes(uri)) throw new RemoraError("ERR_PEER_IDENTITY", `${uri} is not allowed here`);
      return uri;
    },
  };
  return state;
}
