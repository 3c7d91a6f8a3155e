// The sidecar's whole-config view (admin /config, VIP table) after an on-demand update:
// O(destinations held), which on-demand keeps to the few the app calls.

import type { Policy } from "../../core/policy/types.ts";
import type { MeshSettings } from "../sidecar.ts";
import type { DestinationUpdate } from "./destinations.ts";
import { logicalName } from "../../core/router.ts";

export function patchMesh(mesh: MeshSettings, update: DestinationUpdate): MeshSettings {
  const endpoints = { ...mesh.endpoints };
  const services = { ...mesh.services };
  const policies = new Map<string, Policy>(mesh.policies.map((p) => [logicalName(p.route.destination), p]));
  for (const name of [...update.remove, ...Object.keys(update.set)]) {
    delete endpoints[name];
    delete services[name];
    policies.delete(logicalName(name));
  }
  for (const [name, d] of Object.entries(update.set)) {
    endpoints[name] = d.endpoints;
    if (d.vip !== undefined) services[name] = { vip: d.vip };
    if (d.policy !== undefined) policies.set(logicalName(name), d.policy);
  }
  return {
    policies: [...policies.values()],
    endpoints,
    version: update.version,
    ...(Object.keys(services).length === 0 ? {} : { services }),
  };
}

/** How many destinations a config holds (admin /config): any name with endpoints, a policy or a VIP. */
export function heldDestinations(mesh: Pick<MeshSettings, "policies" | "endpoints" | "services">): number {
  const names = new Set([...Object.keys(mesh.endpoints), ...Object.keys(mesh.services ?? {})].map(logicalName));
  for (const p of mesh.policies) names.add(logicalName(p.route.destination));
  return names.size;
}
