// Hop-by-hop headers (RFC 9110 §7.6.1) describe one connection and must not be forwarded;
// Node frames the next hop itself (content-length or chunked).

const HOP_BY_HOP: ReadonlySet<string> = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer"]);
const NOMINATES_NOTHING = new Set(["keep-alive", "close"]);

/** Names to drop: the fixed list plus any the Connection header nominates. */
export function hopByHopNames(connectionHeader: string | null | undefined): ReadonlySet<string> {
  // "keep-alive" and "close" (nearly every Connection header) name nothing beyond the fixed list.
  if (!connectionHeader || NOMINATES_NOTHING.has(connectionHeader.toLowerCase())) return HOP_BY_HOP;
  const names = new Set(HOP_BY_HOP);
  for (const token of connectionHeader.split(",")) {
    const name = token.trim().toLowerCase();
    if (name) names.add(name);
  }
  return names;
}
