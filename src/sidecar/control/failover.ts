// Several control-plane replicas behind one ControlTransport: calls go to the replica in use;
// a connect failure, timeout or 5xx moves to the next one (logged once per switch) and the
// same call is tried there. The client's watch keeps the version it holds, so its next
// long-poll on the new replica resumes from it (replicas share versions through the store).

import type { ControlRequestOptions, ControlResponse, ControlTransport } from "../control-client.ts";
import type { Logger } from "../logger.ts";

export interface Replica {
  /** https://host:port, for logs. */
  url: string;
  transport: ControlTransport;
}

export interface FailoverTransport {
  transport: ControlTransport;
  /** The URL of the replica in use. */
  current(): string;
}

export function createFailoverTransport(replicas: readonly Replica[], log: Logger): FailoverTransport {
  if (replicas.length === 0) throw new Error("createFailoverTransport: no control-plane URL");
  let current = 0;

  /** Moves off `from` (only if no concurrent call already moved), logging the switch once. */
  const failed = (from: number, reason: string): void => {
    if (current !== from || replicas.length === 1) return;
    current = (from + 1) % replicas.length;
    log.warn({ from: replicas[from]!.url, to: replicas[current]!.url, error: reason }, `control plane ${replicas[from]!.url} failed (${reason}); switching to ${replicas[current]!.url}`);
  };

  const transport: ControlTransport = async (method: string, path: string, body: unknown, options: ControlRequestOptions): Promise<ControlResponse> => {
    const start = current;
    let last: { res: ControlResponse } | { err: unknown } | undefined;
    for (let k = 0; k < replicas.length; k++) {
      const idx = (start + k) % replicas.length;
      const r = replicas[idx]!;
      try {
        const res = await r.transport(method, path, body, options);
        if (res.status < 500) return res;
        last = { res };
        failed(idx, `${method} ${path.split("?")[0]} answered ${res.status}`);
      } catch (err) {
        // Our own shutdown, not the replica's fault.
        if (options.signal?.aborted) throw err;
        last = { err };
        failed(idx, (err as Error)?.message ?? String(err));
      }
    }
    // Every replica failed: hand back what the last one said, so the client backs off and reports the outage.
    if (last !== undefined && "res" in last) return last.res;
    throw (last as { err: unknown }).err;
  };
  return { transport, current: () => replicas[current]!.url };
}
