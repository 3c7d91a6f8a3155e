// meshFetch(): a drop-in fetch over a process-wide mesh, the first one createMesh() made,
// or else one configured from the environment (REMORA_CONFIG, or REMORA_CONTROL with
// REMORA_CA, REMORA_TOKEN and REMORA_SERVICE, as `remora proxy` reads them).

import process from "node:process";
import { RemoraError } from "../core/errors.ts";
import type { Mesh, MeshOptions } from "./create-mesh.ts";

let shared: Promise<Mesh> | undefined;

/** Makes `mesh` the one meshFetch uses, unless one is already set. */
export function offerDefault(mesh: Mesh): void {
  shared ??= Promise.resolve(mesh);
}

/** A closed mesh stops serving meshFetch; the next call starts one from the environment. */
export function forgetDefault(mesh: Mesh): void {
  void shared?.then((m) => {
    if (m === mesh) shared = undefined;
  }, () => {});
}

export async function meshFetch(input: Request | string | URL, init?: RequestInit): Promise<Response> {
  shared ??= fromEnvironment();
  // A failed start is not cached: the next call tries again (the control plane may be back).
  const mesh = await shared.catch((e: unknown) => {
    shared = undefined;
    throw e;
  });
  return mesh.fetch(input, init);
}

async function fromEnvironment(): Promise<Mesh> {
  const { createMesh } = await import("./create-mesh.ts");
  const env = process.env;
  let options: MeshOptions;
  if (env.REMORA_CONFIG) {
    options = { config: env.REMORA_CONFIG };
  } else if (env.REMORA_CONTROL && env.REMORA_CA && env.REMORA_TOKEN && env.REMORA_SERVICE) {
    options = {
      control: { url: env.REMORA_CONTROL, ca: env.REMORA_CA, token: env.REMORA_TOKEN, service: env.REMORA_SERVICE, ...(env.REMORA_NAMESPACE ? { namespace: env.REMORA_NAMESPACE } : {}) },
    };
  } else {
    throw new RemoraError("ERR_CONFIG_INVALID",
      "meshFetch has no mesh: call createMesh() first, or set REMORA_CONFIG=FILE, or REMORA_CONTROL, REMORA_CA, REMORA_TOKEN and REMORA_SERVICE.");
  }
  return createMesh(options);
}
