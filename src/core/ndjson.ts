// Reading an NDJSON stream (the sidecars' admin /events, the control plane's /v1/tap): each
// line parsed as it completes; a line that is not a JSON object is skipped, since a feed
// cut mid-line or a proxy's stray output must not end the reader.

export async function* ndjsonRecords(body: AsyncIterable<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const decoder = new TextDecoder();
  let buf = "";
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true });
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        continue;
      }
      if (rec !== null && typeof rec === "object" && !Array.isArray(rec)) yield rec as Record<string, unknown>;
    }
  }
}
