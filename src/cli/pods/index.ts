// The pod tooling in one import, for `remora demo --pods` and the end-to-end tests.

export { APP_UID, PROXY_UID, VIP_CIDR, PodNetwork, execIn, inNamespace, podEnv, podOf, spawnIn, writeHosts } from "./network.ts";
export type { Exec, Pod, PodNetworkOptions, SpawnOptions } from "./network.ts";
export { namespaces, pidsIn, podsUnavailable, removeNamespace, runDir, runPrefix, sweepStale } from "./namespaces.ts";
export { alive, killGroup, missingCommand, sh } from "./system.ts";
