// What the native Bun listener hands on rather than serves itself (tunnels, opaque TCP,
// HTTP/2) needs node:stream and node:http2. They load with the first such connection, so a
// sidecar that only ever serves HTTP/1.1 never holds them (issue 8: idle memory); the
// socket's events meanwhile are held and replayed to whoever owns it next.

import type { SocketOwner } from "./native-duplex.ts";
import type { ListenSocket } from "./native-listen.ts";
import { lazy } from "../lazy.ts";

export interface HandOverModules {
  BunDuplex: typeof import("./native-duplex.ts").BunDuplex;
  h2: typeof import("../node/h2-serve.ts");
}

const modules = lazy(async (): Promise<HandOverModules> => {
  const [duplex, h2] = await Promise.all([import("./native-duplex.ts"), import("../node/h2-serve.ts")]);
  return { BunDuplex: duplex.BunDuplex, h2 };
});

/** The modules if a connection already loaded them (an h2 session to drain exists only then). */
export function loadedHandOver(): HandOverModules | undefined {
  return modules.loaded;
}

/** Holds a socket's events until its next owner exists. */
class Held implements SocketOwner {
  readonly chunks: Uint8Array[] = [];
  ended = false;
  closed = false;
  error: Error | undefined;

  onData(chunk: Uint8Array): void {
    // Bun may reuse the buffer it passes to data() once the callback returns.
    this.chunks.push(chunk.slice());
  }

  onDrain(): void {}

  onEnd(): void {
    this.ended = true;
  }

  onClose(error?: Error): void {
    this.closed = true;
    this.error = error;
  }
}

/**
 * Runs `then` with the modules: at once when they are loaded, else once they are, replaying
 * what the socket did meanwhile to the owner `then` installed. A connection that closed
 * while they loaded is dropped.
 */
export function withHandOver(socket: ListenSocket<SocketOwner>, then: (m: HandOverModules) => void): void {
  const loaded = modules.loaded;
  if (loaded) return then(loaded);
  const held = new Held();
  socket.data = held;
  modules.get().then((m) => {
    if (held.closed) return;
    then(m);
    const owner = socket.data;
    for (const chunk of held.chunks) owner.onData(chunk);
    if (held.ended) owner.onEnd();
  }, () => socket.terminate());
}
