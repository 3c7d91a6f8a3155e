// Reading a child process's JSON log: its stdout split into lines, each JSON line handed
// over parsed (src/core/ndjson.ts). One reader for the demo, `remora run`, the benches and the tests.

import { jsonObject, lineSplitter } from "../core/ndjson.ts";

/** Calls `onJson` with each JSON object line `stream` writes, and `onOther` with any other line. */
export function onJsonLines(stream: NodeJS.ReadableStream, onJson: (rec: Record<string, unknown>, line: string) => void, onOther: (line: string) => void = () => {}): void {
  const split = lineSplitter();
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    for (const line of split(chunk)) {
      const rec = jsonObject(line);
      if (rec) onJson(rec, line);
      else onOther(line);
    }
  });
}
