// A verifyPeer bounded in time. A verifier that never answers (an embedder's, waiting on
// something that never comes) would hold the caller's connection open with nothing handled
// and nothing refused; listeners bound it by their headers timeout, as they bound a stalled
// TLS handshake.

import type { PeerVerifier } from "./types.ts";

export function verifyWithin(verify: PeerVerifier, ms: number): PeerVerifier {
  return (chainDer, expectedIdentity) =>
    new Promise<string>((resolve, reject) => {
      const timer: { unref?: () => void } = setTimeout(() => reject(new Error(`the client's certificate was not verified within ${ms} ms`)), ms);
      // A pending verification must not keep a finished program running.
      timer.unref?.();
      const settle = () => clearTimeout(timer as ReturnType<typeof setTimeout>);
      let pending: Promise<string>;
      try {
        pending = verify(chainDer, expectedIdentity);
      } catch (err) {
        settle();
        return reject(err);
      }
      pending.then(
        (id) => (settle(), resolve(id)),
        (err: unknown) => (settle(), reject(err)),
      );
    });
}
