// Reading newline-delimited JSON (the sidecars' admin /events, the control plane's /v1/tap,
// a child process's log on stdout): text split into lines as they complete, each line
// parsed on its own; a line that is not a JSON object is skipped, since a feed cut mid-line
// or a proxy's stray output must not end the reader.

/** Splits text that arrives in pieces into complete lines (without their LF); a partial last line waits for the next piece. */
export function lineSplitter(): (text: string) => string[] {
  let buf = "";
  return (text) => {
    buf += text;
    const lines: string[] = [];
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    return lines;
  };
}

/** The line parsed as a JSON object, or undefined for anything else (not JSON, an array, a scalar). */
export function jsonObject(line: string): Record<string, unknown> | undefined {
  let rec: unknown;
  try {
    rec = JSON.parse(line);
  } catch {
    return undefined;
  }
  return rec !== null && typeof rec === "object" && !Array.isArray(rec) ? (rec as Record<string, unknown>) : undefined;
}

export async function* ndjsonRecords(body: AsyncIterable<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder();
  const split = lineSplitter();
  for await (const chunk of body) {
    for (const line of split(decoder.decode(chunk, { stream: true }))) {
      const rec = jsonObject(line);
      if (rec) yield rec;
    }
  }
}
