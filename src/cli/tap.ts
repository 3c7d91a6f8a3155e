// `remora tap SERVICE`: a live stream of the service's requests (caller identity, callee,
// method, path, status, latency) from the control plane's `GET /v1/tap`, until Ctrl-C or --max.

import type { TapMessage } from "../control/tap.ts";
import { parse, UsageError } from "./args.ts";
import { connectControl, controlFlags, controlHelp } from "./control-client.ts";
import { latency } from "./stat.ts";
import { ndjsonRecords } from "../core/ndjson.ts";

const usage = `Usage: remora tap SERVICE [--max N] [--json]

Streams SERVICE's requests as they finish: what its own sidecars received (inbound) and
what callers' sidecars sent to it (outbound), one line each, until Ctrl-C or --max lines.

${controlHelp}`;

type TapRequest = Extract<TapMessage, { type: "request" }>;

/** `12:00:01.123  spiffe://…/orders -> payments  POST /charge  200  12.3ms  (inbound at payments-1)` */
export function formatTapLine(l: TapRequest): string {
  const time = l.time.length >= 23 ? l.time.slice(11, 23) : l.time;
  const caller = l.caller ?? "(plaintext)";
  const status = l.status === null ? "---" : String(l.status);
  return `${time}  ${caller} -> ${l.callee}  ${l.method} ${l.path}  ${status}  ${latency(l.latencyMs)}  (${l.direction} at ${l.proxy})`;
}

export async function tapCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse("tap", argv, { max: { type: "string" }, json: { type: "boolean" }, help: { type: "boolean" }, ...controlFlags }, true);
  if (values.help) return console.log(usage), 0;
  const [service, ...extra] = positionals;
  if (service === undefined || extra.length > 0) throw new UsageError("remora tap: name one service, e.g. remora tap payments");
  let max: number | undefined;
  if (values.max !== undefined) {
    max = Number(values.max);
    if (!Number.isInteger(max) || max < 1) throw new UsageError(`remora tap: --max "${values.max}" must be a whole number of lines, at least 1`);
  }
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const query = `service=${encodeURIComponent(service)}${max === undefined ? "" : `&max=${max}`}`;
  const client = await connectControl(values);
  let shown = 0;
  try {
    const body = await client.stream(`/v1/tap?${query}`, stop.signal);
    const reader = body.getReader();
    stop.signal.addEventListener("abort", () => void reader.cancel().catch(() => {}), { once: true });
    const chunks = async function* () {
      for (;;) {
        const { done, value } = await reader.read().catch(() => ({ done: true as const, value: undefined }));
        if (done) return;
        yield value;
      }
    };
    for await (const rec of ndjsonRecords(chunks())) {
      const m = rec as unknown as TapMessage;
      if (m.type === "error") console.error(`remora tap: ${m.error}`);
      if (m.type === "hello" && !values.json) console.error(`tapping ${m.service} through ${m.proxies.length} proxies; Ctrl-C to stop`);
      if (m.type !== "request") continue;
      console.log(values.json ? JSON.stringify(m) : formatTapLine(m));
      if (max !== undefined && ++shown >= max) stop.abort();
      if (stop.signal.aborted) break;
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    client.close();
  }
  return 0;
}
