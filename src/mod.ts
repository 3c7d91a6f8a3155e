// remora as a library, for programs that cannot run a sidecar: createMesh() and meshFetch(),
// a proxyless fetch with the mesh's naming, balancing, retries, ejection, mTLS and metrics.
// docs/embedding.md shows both; examples/embed/client.ts runs on Node, Bun and Deno.

import { createMesh as create, type Mesh, type MeshOptions } from "./mod/create-mesh.ts";
import { forgetDefault, offerDefault } from "./mod/default-mesh.ts";

export type { ControlOptions, Mesh, MeshOptions, StaticConfig } from "./mod/create-mesh.ts";
export type { DestinationStatus } from "./core/pipeline.ts";
export type { MeshEvent } from "./core/events.ts";
export { meshFetch } from "./mod/default-mesh.ts";
export { RemoraError, isRemoraError, type ErrorCode } from "./core/errors.ts";

/** A mesh client; the first one made also serves meshFetch(). */
export async function createMesh(options: MeshOptions): Promise<Mesh> {
  const mesh = await create(options);
  offerDefault(mesh);
  const close = mesh.close.bind(mesh);
  return Object.assign(mesh, {
    close: () => {
      forgetDefault(mesh);
      return close();
    },
  });
}
