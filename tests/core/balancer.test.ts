import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Candidate } from "../../src/core/balancer/balancer.ts";
import { createBalancer } from "../../src/core/balancer/create.ts";
import { leastRequest } from "../../src/core/balancer/least-request.ts";
import { randomBalancer } from "../../src/core/balancer/random.ts";
import { roundRobin } from "../../src/core/balancer/round-robin.ts";
import { B1, B2, B3, B4, sequence } from "./fake-upstream.ts";

function ep(address: string, activeRequests = 0): Candidate {
  return { address, activeRequests };
}

describe("round_robin", () => {
  test("rotates in order over a stable set", () => {
    const rr = roundRobin();
    const set = [ep(B1), ep(B2), ep(B3)];
    const picks = Array.from({ length: 7 }, () => rr.pick(set, Math.random).address);
    assert.deepEqual(picks, [B1, B2, B3, B1, B2, B3, B1]);
  });

  test("stays fair when an endpoint leaves and returns", () => {
    const rr = roundRobin();
    const [a, b, c] = [ep(B1), ep(B2), ep(B3)];
    const counts = new Map<string, number>();
    const pick = (set: Candidate[]): string => {
      const p = rr.pick(set, Math.random).address;
      counts.set(p, (counts.get(p) ?? 0) + 1);
      return p;
    };
    assert.equal(pick([a, b, c]), B1);
    // B2 ejected: rotation continues over the remaining ones without repeating.
    assert.deepEqual([pick([a, c]), pick([a, c]), pick([a, c])], [B3, B1, B3]);
    // B2 returns: it has waited longest, so it goes first, then the rotation resumes.
    assert.deepEqual([pick([a, b, c]), pick([a, b, c]), pick([a, b, c])], [B2, B1, B3]);
    for (let i = 0; i < 30; i++) pick([a, b, c]);
    const [x, y, z] = [counts.get(B1) ?? 0, counts.get(B2) ?? 0, counts.get(B3) ?? 0];
    assert.ok(Math.max(x, y, z) - Math.min(x, y, z) <= 3, `counts ${x}/${y}/${z}`);
  });

  test("with a filtered set (retry) picks the least recently used of the candidates", () => {
    const rr = roundRobin();
    const [a, b, c] = [ep(B1), ep(B2), ep(B3)];
    assert.equal(rr.pick([a, b, c], Math.random), a);
    assert.equal(rr.pick([b, c], Math.random), b);
    assert.equal(rr.pick([a, b, c], Math.random), c);
    assert.equal(rr.pick([a, b, c], Math.random), a);
  });
});

describe("least_request", () => {
  test("prefers the idle endpoint of the two it samples", () => {
    const lr = leastRequest();
    const busy = ep(B1, 5);
    const idle = ep(B2, 0);
    for (const r of [0, 0.3, 0.6, 0.99]) assert.equal(lr.pick([busy, idle], sequence(r)), idle);
  });

  test("samples two distinct endpoints with the injected Random (power of two choices)", () => {
    const lr = leastRequest();
    const set = [ep(B1, 3), ep(B2, 1), ep(B3, 2), ep(B4, 0)];
    // i = floor(0.25 * 4) = 1 (B2), j = floor(0 * 3) = 0 (B1): B2 has fewer.
    assert.equal(lr.pick(set, sequence(0.25, 0)).address, B2);
    // i = 0 (B1), j = floor(0.5 * 3) = 1, bumped past i to 2 (B3): B3 has fewer.
    assert.equal(lr.pick(set, sequence(0, 0.5)).address, B3);
    // i = 3 (B4), j = floor(0.99 * 3) = 2 -> B3: B4 idle wins even though B2 < B3.
    assert.equal(lr.pick(set, sequence(0.99, 0.99)).address, B4);
    // i = 0 (B1), j = 0 -> bumped to 1 (never samples the same endpoint twice).
    assert.equal(lr.pick([ep(B1, 1), ep(B2, 2)], sequence(0, 0)).address, B1);
  });

  test("breaks ties with the injected Random", () => {
    const lr = leastRequest();
    const set = [ep(B1, 1), ep(B2, 1)];
    assert.equal(lr.pick(set, sequence(0, 0, 0.2)).address, B1);
    assert.equal(lr.pick(set, sequence(0, 0, 0.7)).address, B2);
  });

  test("a single candidate is returned as is", () => {
    assert.equal(leastRequest().pick([ep(B3, 9)], sequence(0.5)).address, B3);
  });
});

describe("random", () => {
  test("uses the injected Random uniformly over the candidates", () => {
    const rnd = randomBalancer();
    const set = [ep(B1), ep(B2), ep(B3), ep(B4)];
    assert.deepEqual(
      [0, 0.25, 0.5, 0.74, 0.999999, 1].map((r) => rnd.pick(set, sequence(r)).address),
      [B1, B2, B3, B3, B4, B4],
    );
  });
});

test("createBalancer builds each policy name", () => {
  for (const name of ["round_robin", "least_request", "random"] as const) assert.equal(createBalancer(name).name, name);
});
