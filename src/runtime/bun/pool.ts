// Keep-alive connections per key (mode, address, expected identity), most recently used
// first, each closed after idling too long. Retiring (new TLS material) drops idle ones now
// and busy ones when their request finishes.

import type { OpenedConnection } from "./open.ts";

export interface Pooled {
  readonly opened: OpenedConnection;
  /** Back to the pool when the exchange left the connection clean, else closed. */
  release(reusable: boolean): void;
  destroy(): void;
}

export interface Pool {
  take(key: string): Pooled | undefined;
  adopt(key: string, opened: OpenedConnection): Pooled;
  retire(): void;
  close(): void;
}

export function createPool(idleTimeoutMs: number): Pool {
  const idle = new Map<string, Entry[]>();
  const live = new Set<Entry>();
  let generation = 0;
  let closed = false;
  // One sweep for every idle connection instead of a timer armed and cleared per request:
  // a connection idles between idleTimeoutMs and 1/8 more, still below the 5 s keep-alive
  // of Node servers when the timeout is the default 4 s.
  const sweepEveryMs = Math.max(50, Math.floor(idleTimeoutMs / 8));
  let sweeper: ReturnType<typeof setInterval> | undefined;
  let idleCount = 0;

  interface Entry extends Pooled {
    key: string;
    generation: number;
    /** When it went back to the pool; undefined while it carries a request. */
    idleSince?: number;
  }

  const sweep = () => {
    const now = Date.now();
    for (const list of [...idle.values()]) {
      for (const entry of [...list]) if (now - entry.idleSince! >= idleTimeoutMs) entry.destroy();
    }
  };

  const unlistIdle = (entry: Entry) => {
    if (entry.idleSince === undefined) return;
    entry.idleSince = undefined;
    const list = idle.get(entry.key);
    const at = list?.indexOf(entry) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list && list.length === 0) idle.delete(entry.key);
    if (--idleCount === 0 && sweeper !== undefined) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  };

  return {
    take(key) {
      const list = idle.get(key);
      while (list && list.length > 0) {
        const entry = list[list.length - 1]!;
        unlistIdle(entry);
        if (entry.opened.socket.alive && entry.generation === generation) {
          entry.opened.socket.socket?.ref();
          return entry;
        }
        entry.destroy();
      }
      return undefined;
    },
    adopt(key, opened) {
      const entry: Entry = {
        key,
        opened,
        generation,
        release(reusable) {
          if (!reusable || closed || entry.generation !== generation || !opened.socket.alive) {
            entry.destroy();
            return;
          }
          const list = idle.get(key) ?? [];
          list.push(entry);
          idle.set(key, list);
          entry.idleSince = Date.now();
          if (idleCount++ === 0) {
            sweeper = setInterval(sweep, sweepEveryMs);
            // Idle connections must not keep a finished program (a CLI command) running.
            (sweeper as { unref?: () => void }).unref?.();
          }
          opened.socket.socket?.unref();
        },
        destroy() {
          unlistIdle(entry);
          live.delete(entry);
          opened.socket.destroy();
        },
      };
      live.add(entry);
      opened.socket.onClose(() => {
        unlistIdle(entry);
        live.delete(entry);
      });
      return entry;
    },
    retire() {
      generation++;
      for (const list of [...idle.values()]) for (const entry of [...list]) entry.destroy();
    },
    close() {
      closed = true;
      for (const entry of [...live]) entry.destroy();
    },
  };
}
