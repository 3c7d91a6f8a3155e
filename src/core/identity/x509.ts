// The one door to @peculiar/x509 for all of remora: import it from here, never directly. Only
// control-plane code (issuing in ca.ts, reading CSRs in csr.ts) does: it costs a Bun process ~18 MB,
// so the sidecar reads certificates with certificate-der.ts (tests/core/identity-sidecar-imports.test.ts).
// The library resolves classes through tsyringe, which needs the Reflect metadata API
// (its README: "Reflect Polyfill Required"), so the polyfill must load before it does.

import "reflect-metadata";
import * as x509 from "@peculiar/x509";

// Node has no `self`, so the library's own detection falls back to `global.crypto`; naming
// the web-standard object once makes all three runtimes take the same path.
x509.cryptoProvider.set(globalThis.crypto);

export { x509 };
