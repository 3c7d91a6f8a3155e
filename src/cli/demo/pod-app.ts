// The payments app of `remora demo --pods`, run by the demo in its replica's pod under the
// app uid: the loopback demo's payments app (src/cli/demo-apps.ts) behind a line protocol on
// stdin, so the demo can make it flap or heal and read its own counts across the pod wall.
//   stdin  "flapping on" | "flapping off" | "state"
//   stdout {"msg":"app ready"|"app state","address","flapping","hits","resets"} per line

import { createInterface } from "node:readline";
import { startPaymentsApp } from "../demo-apps.ts";

export async function servePodApp(name: string, flapping: boolean): Promise<number> {
  const app = await startPaymentsApp(name, flapping);
  const report = (msg: string) => console.log(JSON.stringify({ msg, replica: name, address: app.address, flapping: app.flapping, hits: app.hits, resets: app.resets }));
  report("app ready");
  const lines = createInterface({ input: process.stdin });
  const done = new Promise<void>((ok) => {
    process.once("SIGTERM", ok);
    process.once("SIGINT", ok);
    lines.on("line", (line) => {
      if (line === "flapping on") app.flapping = true;
      if (line === "flapping off") app.flapping = false;
      report("app state");
    });
    // The demo is gone (its end of the pipe closed): so is the app.
    lines.on("close", ok);
  });
  await done;
  lines.close();
  process.stdin.destroy();
  await app.close();
  return 0;
}
