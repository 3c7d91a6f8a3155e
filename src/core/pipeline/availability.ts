// A destination's endpoints as the `resolve` event reports them. Built per request this was
// an array and an object per endpoint (issue 8); it is kept per destination and remade only
// when an endpoint was ejected or returned, or the list changed. Frozen, because the events
// that share one may be kept by their readers (the demo's narration, the event feed).

import type { Destination } from "./destination.ts";

export type Availability = readonly { readonly address: string; readonly available: boolean }[];

const made = new WeakMap<Destination, Availability>();

export function availabilityOf(destination: Destination): Availability {
  const endpoints = destination.endpoints;
  const last = made.get(destination);
  if (last !== undefined && last.length === endpoints.length) {
    let same = true;
    for (let i = 0; i < endpoints.length; i++) {
      const e = endpoints[i]!;
      const a = last[i]!;
      if (a.address !== e.address || a.available === e.health.ejected) {
        same = false;
        break;
      }
    }
    if (same) return last;
  }
  const next: Availability = Object.freeze(endpoints.map((e) => Object.freeze({ address: e.address, available: !e.health.ejected })));
  made.set(destination, next);
  return next;
}
