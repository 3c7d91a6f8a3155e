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

  interface Entry extends Pooled {
    key: string;
    generation: number;
    timer?: ReturnType<typeof setTimeout>;
  }

  const unlistIdle = (entry: Entry) => {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const list = idle.get(entry.key);
    const at = list?.indexOf(entry) ?? -1;
    if (at >= 0) list!.splice(at, 1);
    if (list && list.length === 0) idle.delete(entry.key);
  };

  return {
    take(key) {
      const list = idle.get(key);
      while (list && list.length > 0) {
        const entry = list.pop()!;
        clearTimeout(entry.timer);
        entry.timer = undefined;
        if (entry.opened.socket.alive && entry.generation === generation) {
          if (list.length === 0) idle.delete(key);
          entry.opened.socket.socket?.ref();
          return entry;
        }
        entry.destroy();
      }
      idle.delete(key);
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
          entry.timer = setTimeout(() => entry.destroy(), idleTimeoutMs);
          // An idle connection must not keep a finished program (a CLI command) running.
          (entry.timer as { unref?: () => void }).unref?.();
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
      idle.clear();
    },
    close() {
      closed = true;
      for (const entry of [...live]) entry.destroy();
      idle.clear();
    },
  };
}
