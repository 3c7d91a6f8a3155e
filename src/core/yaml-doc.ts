// YAML text to plain values, with syntax errors as one sentence naming the file, line
// and column (the yaml library's own messages span several lines).

import { parseAllDocuments } from "yaml";
import { RemoraError, type ErrorCode } from "./errors.ts";

export function parseYamlDocuments(text: string, source: string, code: ErrorCode): unknown[] {
  const docs = parseAllDocuments(text, { prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const at = err.linePos?.[0];
      const where = at ? `${source}:${at.line}:${at.col}` : source;
      const what = err.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      throw new RemoraError(code, `${where}: ${what}`);
    }
    const value = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

export function parseYamlDocument(text: string, source: string, code: ErrorCode): unknown {
  const docs = parseYamlDocuments(text, source, code);
  if (docs.length !== 1) throw new RemoraError(code, `${source}: expected one YAML document, found ${docs.length}`);
  return docs[0];
}
