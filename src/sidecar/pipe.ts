// Joins two byte streams (the app's connection and the tunnel to the peer, or the peer's
// tunnel and the local app) both ways: backpressure (a full side pauses the other),
// half-close (an end on one side ends the other's writing only) and an idle timeout.

import type { Clock } from "../core/clock.ts";
import type { Duplex } from "../runtime/types.ts";

export interface PipeResult {
  /** Bytes from `down` (the side that opened the connection) delivered to `up`. */
  sent: number;
  /** Bytes from `up` delivered to `down`. */
  received: number;
  /** "closed": both sides finished; "idle": the idle timeout cut it; "error": a side failed or reset. */
  end: "closed" | "idle" | "error";
  error?: string;
}

export interface PipeOptions {
  clock: Clock;
  /** Nothing in either direction for this long closes both sides. */
  idleMs: number;
  /** Each chunk forwarded, as it passes (live byte metrics). */
  onBytes?: (flow: "sent" | "received", bytes: number) => void;
}

/**
 * After both sides ended, how long their last bytes get to flush before both are cut: a
 * socket closes by itself once its writes are out, so this only bounds one that does not.
 */
const LINGER_MS = 1_000;

/** Settles once both sides are closed, whatever closed them. */
export function pipeBoth(down: Duplex, up: Duplex, o: PipeOptions): Promise<PipeResult> {
  return new Promise((resolve) => {
    const result: PipeResult = { sent: 0, received: 0, end: "closed" };
    let last = o.clock.now();
    let finished = false;
    const ended = { down: false, up: false };
    let closed = 0;
    const stopIdle = new AbortController();

    const finish = (end: PipeResult["end"], error?: string) => {
      if (finished) return;
      finished = true;
      result.end = end;
      if (error !== undefined) result.error = error;
      stopIdle.abort();
      down.destroy();
      up.destroy();
      resolve(result);
    };

    const forward = (from: Duplex, to: Duplex, flow: "sent" | "received", side: "down" | "up") => {
      from.on("data", (chunk) => {
        last = o.clock.now();
        if (flow === "sent") result.sent += chunk.length;
        else result.received += chunk.length;
        o.onBytes?.(flow, chunk.length);
        if (!to.write(chunk)) from.pause();
      });
      to.on("drain", () => from.resume());
      // Half-close: the peer finished sending; pass the FIN on and keep the other direction.
      from.on("end", () => {
        ended[side] = true;
        to.end();
        // Not finished here: destroying both now would drop what is still queued for
        // writing (on Deno under load, the tail of a 256 KiB echo). They close once flushed.
        if (ended.down && ended.up) void o.clock.sleep(LINGER_MS, stopIdle.signal).then(() => finish("closed"), () => {});
      });
      from.on("error", (e) => finish("error", e.message));
      from.on("close", () => {
        closed++;
        // A side that closed without ending cleanly (a reset) takes the other with it.
        if (!ended[side]) finish("error", `${side === "down" ? "client" : "upstream"} connection closed abruptly`);
        else if (closed === 2) finish("closed");
      });
    };
    forward(down, up, "sent", "down");
    forward(up, down, "received", "up");

    void (async () => {
      let wait = o.idleMs;
      for (;;) {
        try {
          await o.clock.sleep(wait, stopIdle.signal);
        } catch {
          return;
        }
        const quiet = o.clock.now() - last;
        if (quiet >= o.idleMs) return finish("idle", `no bytes either way for ${o.idleMs} ms`);
        wait = o.idleMs - quiet;
      }
    })();

    down.resume();
    up.resume();
  });
}
