// Property tests (fast-check) for the policy parser and the static sidecar config parser:
// random and mutated YAML/JSON documents, the seed among them. Whatever comes in, the
// parser returns a result or throws a RemoraError whose message is one sentence naming
// the file and, for a document that parsed as YAML, the field. Bounded in runs and time;
// on failure fast-check prints the seed and path to replay it.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { parse, stringify } from "yaml";
import { RemoraError } from "../../src/core/errors.ts";
import { parsePolicies, parsePolicy, policyToDocument } from "../../src/core/policy/parse.ts";
import { parseConfigDocument } from "../../src/sidecar/config.ts";
import { parseYamlDocument } from "../../src/core/yaml-doc.ts";

const RUNS = { numRuns: 400, interruptAfterTimeLimit: 8_000 };
const FILE = "fuzz.yaml";

const seedText = readFileSync(new URL("../../policies/payments.yaml", import.meta.url), "utf8");
const exampleTexts = ["payments.yaml", "payments-canary.yaml", "payments-chaos.yaml", "payments-v2-rewrite.yaml"].map((f) =>
  readFileSync(new URL(`../../policies/${f}`, import.meta.url), "utf8"),
);

/** Runs `f`; a throw must be a RemoraError with `code` whose message is one sentence naming `file`. */
function clean(f: () => unknown, code: string, file: string): void {
  try {
    f();
  } catch (e) {
    if (!(e instanceof RemoraError)) throw new Error(`crashed with ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`, { cause: e });
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.length > 0 && e.message.length < 1_000, `message length ${e.message.length}`);
    assert.ok(!e.message.includes("\n"), `one line: ${JSON.stringify(e.message)}`);
    assert.ok(e.message.includes(file), `names the file: ${e.message}`);
  }
}

/** Character-level mutations of a text: delete, insert, replace, duplicate or cut a slice. */
const mutatedText = (base: string) =>
  fc
    .array(
      fc.tuple(fc.nat(), fc.constantFrom("delete", "insert", "replace", "duplicate", "cut"), fc.string({ maxLength: 8, unit: "grapheme-ascii" }), fc.nat({ max: 20 })),
      { minLength: 1, maxLength: 6 },
    )
    .map((ops) => {
      let s = base;
      for (const [at, op, text, n] of ops) {
        const i = s.length === 0 ? 0 : at % s.length;
        if (op === "delete") s = s.slice(0, i) + s.slice(i + n);
        else if (op === "insert") s = s.slice(0, i) + text + s.slice(i);
        else if (op === "replace") s = s.slice(0, i) + text + s.slice(i + text.length);
        else if (op === "duplicate") s = s.slice(0, i) + s.slice(i, i + n) + s.slice(i);
        else s = s.slice(0, i);
      }
      return s;
    });

/** YAML-significant characters are likelier than in a uniform string. */
const yamlish = fc.string({
  unit: fc.oneof(fc.constantFrom(":", "-", " ", "\n", "  ", "{", "}", "[", "]", ",", "&a", "*a", "!!", "#", "'", '"', "---", "route", "destination", "5xx", "0", "250ms", "|", ">"), fc.string({ maxLength: 1 })),
  maxLength: 80,
});

/** Replaces the value at one random path of a document (objects and lists) with `value`. */
function replaceAt(doc: unknown, pathSeed: number[], value: unknown): unknown {
  if (pathSeed.length === 0 || doc === null || typeof doc !== "object") return value;
  const [pick = 0, ...rest] = pathSeed;
  if (Array.isArray(doc)) {
    if (doc.length === 0) return [value];
    const i = pick % doc.length;
    return doc.map((d, j) => (j === i ? replaceAt(d, rest, value) : d));
  }
  const keys = Object.keys(doc);
  if (keys.length === 0) return value;
  const k = keys[pick % keys.length] ?? "";
  return { ...doc, [k]: replaceAt((doc as Record<string, unknown>)[k], rest, value) };
}

describe("fuzz: policy parser", () => {
  test("random YAML-ish text: a result or one clean sentence", () => {
    fc.assert(fc.property(yamlish, (text) => clean(() => parsePolicies(text, FILE), "ERR_POLICY_INVALID", FILE)), RUNS);
  });

  test("mutated example policies (the seed among them)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...exampleTexts).chain((t) => mutatedText(t)),
        (text) => clean(() => parsePolicies(text, FILE), "ERR_POLICY_INVALID", FILE),
      ),
      { ...RUNS, numRuns: 800 },
    );
  });

  test("the seed with one value anywhere replaced by anything: a result or a sentence naming the field", () => {
    const seed = parse(seedText) as unknown;
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 4 }), fc.anything({ maxDepth: 2 }), (path, value) => {
        const doc = replaceAt(seed, path, value);
        try {
          const p = parsePolicy(doc, FILE);
          // Whatever was accepted prints back to a document that parses to the same policy.
          assert.deepEqual(parsePolicy(policyToDocument(p), FILE), p);
        } catch (e) {
          if (!(e instanceof RemoraError)) throw e;
          assert.equal(e.code, "ERR_POLICY_INVALID");
          assert.ok(!e.message.includes("\n"), e.message);
          // "fuzz.yaml: route.retry_policy.num_retries: ..." or "fuzz.yaml: expected a mapping ..." at the root.
          assert.match(e.message, /^fuzz\.yaml: /);
        }
      }),
      { ...RUNS, numRuns: 1_000 },
    );
  });

  test("JSON documents of any shape, and their YAML rendering", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (doc) => {
        clean(() => parsePolicy(doc, FILE), "ERR_POLICY_INVALID", FILE);
        clean(() => parsePolicies(JSON.stringify(doc), FILE), "ERR_POLICY_INVALID", FILE);
      }),
      RUNS,
    );
  });

  test("policy-shaped documents with every new field: budget and breakers accepted or named", () => {
    const num = fc.oneof(fc.integer({ min: -5, max: 5000 }), fc.double({ noNaN: false }), fc.constantFrom("10", "1s", null, true));
    fc.assert(
      fc.property(
        fc.record(
          {
            retry_budget: fc.record({ retry_ratio: num, min_retries_per_second: num, ttl: fc.oneof(num, fc.constantFrom("1s", "10s", "61s", "0", "1h", "x")) }, { requiredKeys: [] }),
            circuit_breakers: fc.record(
              { max_connections: num, max_pending_requests: num, max_requests: num, max_requests_per_endpoint: num },
              { requiredKeys: [] },
            ),
          },
          { requiredKeys: [] },
        ),
        (extra) => {
          const text = stringify({ route: { destination: "payments" }, ...extra });
          clean(() => parsePolicies(text, FILE), "ERR_POLICY_INVALID", FILE);
        },
      ),
      RUNS,
    );
  });
});

describe("fuzz: static sidecar config parser", () => {
  const CONFIG = "sidecar.yaml";
  const sample = stringify({
    identity: { cert: "certs/svid.pem", key: "certs/svid.key", bundle: "certs/root.pem" },
    trust_domain: "cluster.local",
    inbound: { listen: "127.0.0.1:15006", app: "127.0.0.1:8080", mode: "STRICT" },
    outbound: { listen: "127.0.0.1:15001" },
    admin: { listen: "127.0.0.1:15000" },
    endpoints: { payments: [{ address: "192.0.2.1:15006", identity: "spiffe://cluster.local/ns/default/sa/payments", labels: { version: "v1" } }] },
    policies: ["policies/payments.yaml"],
    drain_timeout: "5s",
  });

  const parseConfigText = (text: string) => parseConfigDocument(parseYamlDocument(text, CONFIG, "ERR_CONFIG_INVALID"), CONFIG);

  test("the sample itself parses", () => {
    assert.equal(parseConfigText(sample).inbound?.app, "127.0.0.1:8080");
  });

  test("mutated config text: a result or one clean sentence naming the file", () => {
    fc.assert(fc.property(mutatedText(sample), (text) => clean(() => parseConfigText(text), "ERR_CONFIG_INVALID", CONFIG)), { ...RUNS, numRuns: 800 });
  });

  test("one value anywhere replaced by anything", () => {
    const doc = parse(sample) as unknown;
    fc.assert(
      fc.property(fc.array(fc.nat(), { maxLength: 4 }), fc.anything({ maxDepth: 2 }), (path, value) =>
        clean(() => parseConfigDocument(replaceAt(doc, path, value), CONFIG), "ERR_CONFIG_INVALID", CONFIG),
      ),
      { ...RUNS, numRuns: 800 },
    );
  });

  test("random YAML-ish text", () => {
    fc.assert(fc.property(yamlish, (text) => clean(() => parseConfigText(text), "ERR_CONFIG_INVALID", CONFIG)), RUNS);
  });
});
