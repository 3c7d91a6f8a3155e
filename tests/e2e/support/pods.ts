// The pod tooling lives in the product (src/cli/pods/, also used by `remora demo --pods`);
// this adds only what the tests need besides: the pinned Node and remora's entry script.

import { fileURLToPath } from "node:url";

export * from "../../../src/cli/pods/index.ts";

/** The pinned Node (the machine's own may be older than remora supports). */
export const NODE = fileURLToPath(new URL("../../../node_modules/node/bin/node", import.meta.url));
export const REMORA = fileURLToPath(new URL("../../../bin/remora.js", import.meta.url));
