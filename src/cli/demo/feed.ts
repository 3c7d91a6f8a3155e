// One sidecar's live event feed (admin `GET /events`, NDJSON) held in order, with a cursor
// API for the demo: "the events since X", "wait until an event like this arrives".

import { request } from "node:http";
import type { FeedEvent } from "../../sidecar/event-stream.ts";
import { onJsonLines } from "../json-lines.ts";

export type { FeedEvent };

export interface Feed {
  /** Which sidecar: "orders", "B1", "B2". */
  readonly name: string;
  readonly events: FeedEvent[];
  /** The first event at index >= from that matches, waiting up to timeoutMs for it. */
  waitFor(from: number, match: (e: FeedEvent) => boolean, timeoutMs: number): Promise<{ event: FeedEvent; index: number } | undefined>;
  close(): void;
}

/** Opens the feed and resolves once its first line (hello) arrived, so nothing after is missed. */
export async function followFeed(name: string, admin: string, onEvent: (e: FeedEvent) => void = () => {}): Promise<Feed> {
  let closed = false;
  const events: FeedEvent[] = [];
  const waiters = new Set<() => void>();
  let hello!: () => void;
  let failed!: (e: Error) => void;
  const live = new Promise<void>((ok, fail) => ((hello = ok), (failed = fail)));
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  // node:http with its own connection (agent: false), so close() ends the socket at once
  // and the sidecar can drain without waiting for this reader.
  const i = admin.lastIndexOf(":");
  const req = request({ host: admin.slice(0, i), port: Number(admin.slice(i + 1)), path: "/events", agent: false }, (res) => {
    if (res.statusCode !== 200) {
      failed(new Error(`the event feed of ${name} at http://${admin}/events answered ${res.statusCode}`));
      res.resume();
      return;
    }
    onJsonLines(res, (rec) => {
      const e = rec as unknown as FeedEvent | { type: "hello" };
      if (e.type === "hello") return hello();
      events.push(e);
      onEvent(e);
      wake();
    });
    res.on("close", () => (hello(), wake()));
  });
  req.on("error", (e) => {
    if (!closed) failed(new Error(`the event feed of ${name} at http://${admin}/events failed: ${e.message}`));
    wake();
  });
  req.end();
  await live;

  return {
    name,
    events,
    waitFor(from, match, timeoutMs) {
      const find = () => {
        for (let i = from; i < events.length; i++) if (match(events[i]!)) return { event: events[i]!, index: i };
        return undefined;
      };
      const now = find();
      if (now || closed) return Promise.resolve(now);
      return new Promise((ok) => {
        const check = () => {
          const hit = find();
          if (hit || closed) finish(hit);
        };
        const finish = (hit: { event: FeedEvent; index: number } | undefined) => {
          clearTimeout(t);
          waiters.delete(check);
          ok(hit);
        };
        const t = setTimeout(() => finish(undefined), timeoutMs);
        waiters.add(check);
      });
    },
    close: () => {
      closed = true;
      req.destroy();
      wake();
    },
  };
}
