// The floor under a Bun sidecar: bytes relayed between sockets with nothing parsed, the
// same hops and the same mTLS as a remora pair (plain in, mTLS between the two, plain to
// the app), one upstream connection per client connection. What is left above this in a
// remora sidecar is HTTP and the mesh. Run by bench/layers.ts.
//
//   bun bench/layers/relay.ts client|server LISTEN_PORT TARGET_HOST:PORT CERT_DIR

declare const Bun: {
  file(path: string): { text(): Promise<string> };
  listen<T>(o: unknown): unknown;
  connect<T>(o: unknown): Promise<unknown>;
};

interface RelaySocket {
  data: Side;
  write(chunk: Uint8Array): number;
  end(): void;
  setNoDelay?(on: boolean): void;
}
interface Side {
  peer?: RelaySocket;
  early: Uint8Array[];
}

const [role, listenPort, target, certs] = process.argv.slice(2);
if (!role || !listenPort || !target || !certs) throw new Error("usage: bun bench/layers/relay.ts client|server LISTEN_PORT TARGET_HOST:PORT CERT_DIR");
const read = (f: string) => Bun.file(`${certs}/${f}`).text();
const [host, port] = target.split(":");
const service = role === "client" ? "orders" : "payments";
const tls = { cert: await read(`${service}.pem`), key: await read(`${service}-key.pem`), ca: await read("root.pem") };

Bun.listen<Side>({
  hostname: "127.0.0.1",
  port: Number(listenPort),
  // The server side demands and verifies the client's certificate, as a sidecar's inbound does.
  ...(role === "server" ? { tls: { ...tls, requestCert: true, rejectUnauthorized: true } } : {}),
  socket: {
    open(down: RelaySocket) {
      down.data = { early: [] };
      down.setNoDelay?.(true);
      void Bun.connect({
        hostname: host,
        port: Number(port),
        // The client presents its certificate; the peer's SPIFFE ID is not checked (the floor).
        ...(role === "client" ? { tls: { ...tls, rejectUnauthorized: false } } : {}),
        socket: {
          open(up: RelaySocket) {
            up.setNoDelay?.(true);
            up.data = { peer: down, early: [] };
            down.data.peer = up;
            for (const chunk of down.data.early) up.write(chunk);
            down.data.early = [];
          },
          data: (up: RelaySocket, chunk: Uint8Array) => void up.data.peer?.write(chunk),
          close: (up: RelaySocket) => up.data.peer?.end(),
          error() {},
        },
      });
    },
    data(down: RelaySocket, chunk: Uint8Array) {
      if (down.data.peer) down.data.peer.write(chunk);
      else down.data.early.push(chunk);
    },
    close: (down: RelaySocket) => down.data.peer?.end(),
    error() {},
  },
});
console.log(JSON.stringify({ msg: "ready", role }));
