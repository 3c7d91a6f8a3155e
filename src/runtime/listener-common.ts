// What every adapter's listeners share that needs no runtime module: the protocol-detection
// timeout and the words for a failed listen.

/**
 * How long a plaintext connection may stay silent before it is taken for a server-speaks-
 * first protocol (docs/protocols.md). Istio waits 100 ms, which misroutes a client on a
 * loaded machine; Linkerd waits 10 s, which stalls every MySQL or SMTP session that long
 * when its port is not in opaque_ports. 1 s is long enough for any client that speaks
 * first and short enough to be a tolerable first-connect delay for one that does not.
 */
export const DEFAULT_DETECT_TIMEOUT_MS = 1_000;

/** Why a listen failed, in words. */
export function listenFailure(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "EADDRINUSE") return "address already in use";
  if (code === "EACCES") return "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)";
  if (code === "EADDRNOTAVAIL") return "no interface on this host has that address";
  return err instanceof Error ? err.message : String(err);
}
