// An `apply` body (YAML or JSON, one or more documents) checked as a whole: every policy
// document with the core's policy parser, every `authorization:` document with the core's
// authorization parser. One bad field refuses the whole body, so nothing half-applies.

import { authorizationToDocument, parseAuthorization } from "../core/authz.ts";
import { RemoraError } from "../core/errors.ts";
import { parsePolicy } from "../core/policy/parse.ts";
import { parseYamlDocuments } from "../core/yaml-doc.ts";

export interface AppliedDocuments {
  /** destination -> the policy document as written (sidecars parse it again). */
  policies: Map<string, unknown>;
  /** destination -> the authorization document, normalised. */
  authorization: Map<string, unknown>;
}

function isAuthorizationDocument(doc: unknown): boolean {
  return typeof doc === "object" && doc !== null && !Array.isArray(doc) && "authorization" in doc;
}

export function parseApplyBody(text: string, source = "request body"): AppliedDocuments {
  // JSON is YAML 1.2, so one parser takes both.
  const docs = parseYamlDocuments(text, source, "ERR_POLICY_INVALID");
  if (docs.length === 0) throw new RemoraError("ERR_POLICY_INVALID", `${source}: holds no policy or authorization document.`);
  const out: AppliedDocuments = { policies: new Map(), authorization: new Map() };
  const seen = new Map<string, number>();
  docs.forEach((doc, i) => {
    const label = docs.length > 1 ? `${source} (document ${i + 1})` : source;
    const authz = isAuthorizationDocument(doc);
    const destination = authz ? parseAuthorization(doc, label).destination : parsePolicy(doc, label).route.destination;
    const key = `${authz ? "authorization" : "route"}:${destination}`;
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      const field = authz ? "authorization.destination" : "route.destination";
      throw new RemoraError("ERR_POLICY_INVALID", `${label}: ${field}: "${destination}" is already defined by document ${earlier}`);
    }
    seen.set(key, i + 1);
    if (authz) out.authorization.set(destination, authorizationToDocument(parseAuthorization(doc, label)));
    else out.policies.set(destination, doc);
  });
  return out;
}
