// Reading a child process's pino output: its stdout split into lines, each JSON line handed
// over parsed. One reader for the demo, `remora run`, the benches and the tests.

/** Calls `onJson` with each JSON line `stream` writes, and `onOther` with any other line. */
export function onJsonLines(stream: NodeJS.ReadableStream, onJson: (rec: Record<string, unknown>, line: string) => void, onOther: (line: string) => void = () => {}): void {
  let buf = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    buf += chunk;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let rec: unknown;
      try {
        rec = JSON.parse(line);
      } catch {
        onOther(line);
        continue;
      }
      if (rec !== null && typeof rec === "object") onJson(rec as Record<string, unknown>, line);
      else onOther(line);
    }
  });
}
