// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and must not be forwarded;
// Node frames the next hop itself (content-length or chunked).

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);

/** Names to drop: the fixed list plus any the Connection header nominates. */
export function hopByHopNames(connectionHeader: string | null | undefined): Set<string> {
  if (!connectionHeader) return HOP_BY_HOP;
  const names = new Set(HOP_BY_HOP);
  for (const token of connectionHeader.split(",")) {
    const name = token.trim().toLowerCase();
    if (name) names.add(name);
  }
  return names;
}
