// What `remora control --store postgres://…` opens instead of DIR: the shared PgStore and
// the shared secrets (one root CA for every replica), or one clear error.

import type { ControlLogger } from "../app.ts";
import type { DataDir } from "../data-dir.ts";
import type { CryptoKey } from "../../core/identity/web-crypto.ts";
import { openPgSecrets } from "./pg-secrets.ts";
import { PgStore } from "./pg-store.ts";

export interface SharedControlState {
  store: PgStore;
  data: DataDir;
}

export async function openSharedState(o: { url: string; key: CryptoKey; trustDomain: string; now: number; dataDir?: string; logger: ControlLogger }): Promise<SharedControlState> {
  const store = await PgStore.open({ url: o.url, logger: o.logger });
  try {
    const data = await openPgSecrets(store, o.key, { trustDomain: o.trustDomain, now: o.now, ...(o.dataDir === undefined ? {} : { dataDir: o.dataDir }) });
    return { store, data };
  } catch (e) {
    await store.close();
    throw e;
  }
}
