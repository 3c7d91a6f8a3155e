// Test helpers for traffic management: a policy from YAML text (through the real parser),
// labelled endpoints, and a seeded random source for statistical checks.

import { parse } from "yaml";
import type { Random } from "../../src/core/clock.ts";
import type { Endpoint } from "../../src/core/endpoint.ts";
import { parsePolicy } from "../../src/core/policy/parse.ts";
import type { Policy } from "../../src/core/policy/types.ts";

export function yamlPolicy(text: string): Policy {
  return parsePolicy(parse(text), "test policy");
}

export function labelled(address: string, labels: Record<string, string>): Endpoint {
  return { address, identity: "spiffe://cluster.local/ns/default/sa/payments", labels };
}

/** mulberry32: a small seeded PRNG, so statistical tests are reproducible. */
export function seeded(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
