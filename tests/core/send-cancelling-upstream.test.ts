// An Upstream that declares it stops on its options' signal (cancelsOnSignal) gets a
// bodiless request as it is and no abort race around it; bodies, retries and timeouts
// must behave exactly as for any other upstream.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { FakeClock } from "../../src/core/fake-clock.ts";
import { createOutbound } from "../../src/core/pipeline.ts";
import { cancelsOnSignal, type Upstream, UpstreamError } from "../../src/core/upstream.ts";
import { B1, B2, endpoints, policy, sequence } from "./fake-upstream.ts";

interface Seen {
  req: Request;
  body: string;
  address: string;
}

function outboundWith(send: Upstream, clock = new FakeClock(0), timeoutMs = 15_000) {
  return createOutbound(
    { policies: [policy({ timeoutMs })], endpoints: { payments: endpoints(B1, B2) } },
    { send, clock, random: sequence(0), requestId: () => "req", defaultPolicy: (destination) => policy({ destination }) },
  );
}

/** Answers 200, or fails the first attempt with a connect failure when `failFirst`. */
function recording(seen: Seen[], failFirst = false): Upstream {
  return async (req, endpoint) => {
    seen.push({ req, body: req.body === null ? "" : await req.text(), address: endpoint.address });
    if (failFirst && seen.length === 1) throw new UpstreamError("connect-failure", endpoint.address, `fake connect failure at ${endpoint.address}`);
    return new Response("ok");
  };
}

describe("an upstream that cancels on its signal", () => {
  test("gets a bodiless request as it is; an upstream that does not say so gets a copy", async () => {
    const marked: Seen[] = [];
    const req = new Request("http://payments/charge");
    assert.equal((await outboundWith(cancelsOnSignal(recording(marked))).handle(req)).status, 200);
    assert.equal(marked[0]?.req, req);

    const plain: Seen[] = [];
    const req2 = new Request("http://payments/charge");
    assert.equal((await outboundWith(recording(plain)).handle(req2)).status, 200);
    assert.notEqual(plain[0]?.req, req2);
    assert.equal(plain[0]?.req.url, req2.url);
  });

  test("a request body is sent whole again on the retry", async () => {
    const seen: Seen[] = [];
    const clock = new FakeClock(0); // the retry's back-off runs on it
    const res = await clock.run(outboundWith(cancelsOnSignal(recording(seen, true)), clock).handle(new Request("http://payments/charge", { method: "POST", body: '{"amount":42}' })));
    assert.equal(res.status, 200);
    assert.deepEqual(seen.map((s) => [s.address, s.body]), [[B1, '{"amount":42}'], [B2, '{"amount":42}']]);
  });

  test("the route timeout still answers 504 when the upstream stops on the signal itself", async () => {
    const clock = new FakeClock(0);
    let aborted: unknown;
    const hanging: Upstream = (_req, endpoint, { signal }) =>
      new Promise((_, reject) => {
        signal.addEventListener("abort", () => {
          aborted = signal.reason;
          reject(new UpstreamError("timeout", endpoint.address, `aborted at ${endpoint.address}`));
        }, { once: true });
      });
    const res = await clock.run(outboundWith(cancelsOnSignal(hanging), clock, 1_000).handle(new Request("http://payments/charge")));
    assert.equal(res.status, 504);
    assert.match(await res.text(), /route timeout of 1000 ms/);
    assert.equal((aborted as Error | undefined)?.name, "TimeoutError");
  });
});
