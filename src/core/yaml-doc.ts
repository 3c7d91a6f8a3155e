// YAML text to plain values, with syntax errors as one sentence naming the file, line
// and column (the yaml library's own messages span several lines).

import { isScalar, parseAllDocuments } from "yaml";
import { RemoraError, type ErrorCode } from "./errors.ts";

/** The non-empty documents of a `---`-separated YAML text, as plain values. */
export function parseYamlDocuments(text: string, source: string | undefined, code: ErrorCode): unknown[] {
  const parsed = parseAllDocuments(text, { uniqueKeys: true });
  const docs = Array.isArray(parsed) ? parsed : [];
  const out: unknown[] = [];
  for (const doc of docs) {
    const [error] = doc.errors;
    if (error !== undefined) {
      const pos = error.linePos?.[0];
      const where = pos === undefined ? source : source === undefined ? `line ${pos.line}, column ${pos.col}` : `${source}:${pos.line}:${pos.col}`;
      const what = error.message.replace(/ at line \d+, column \d+:[\s\S]*$/, "");
      throw new RemoraError(code, `${where === undefined ? "" : `${where}: `}invalid YAML: ${what}`, { cause: error });
    }
    // A document holding only comments (or nothing) between two `---` has null contents.
    if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) continue;
    try {
      out.push(doc.toJS());
    } catch (e) {
      // e.g. an alias bomb refused by the yaml library's maxAliasCount.
      throw new RemoraError(code, `${source ?? "YAML"}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return out;
}

export function parseYamlDocument(text: string, source: string, code: ErrorCode): unknown {
  const docs = parseYamlDocuments(text, source, code);
  if (docs.length !== 1) throw new RemoraError(code, `${source}: expected one YAML document, found ${docs.length}`);
  return docs[0];
}
