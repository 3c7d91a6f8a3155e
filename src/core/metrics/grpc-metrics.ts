// Counts a gRPC response by its final status. grpc-status is in the head of a trailers-only
// answer and in the trailers otherwise, which arrive only after the body: the count waits
// for them, without holding the response.

import { isGrpc } from "../retry/grpc.ts";
import { trailersOf } from "../trailers.ts";
import type { MeshMetrics } from "./mesh-metrics.ts";

/**
 * Records `res` in remora_grpc_responses_total once its status is known; returns `res`
 * unchanged. A gRPC answer whose stream ends without any grpc-status is counted "unknown"
 * (the client sees that as an error, gRPC's INTERNAL or UNKNOWN depending on the library).
 */
export function countGrpcResponse(m: MeshMetrics, direction: "inbound" | "outbound", destination: string, res: Response): Response {
  if (!isGrpc(res.headers)) return res;
  const inc = (status: string | null) => m.grpcResponses.inc({ direction, destination, grpc_status: status ?? "unknown" });
  const head = res.headers.get("grpc-status");
  const trailers = trailersOf(res);
  if (head !== null || trailers === undefined) inc(head);
  else trailers.then((t) => inc(t.get("grpc-status")), () => inc(null));
  return res;
}
