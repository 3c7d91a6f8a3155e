// `remora dashboard`: a small local web server (like `linkerd viz dashboard`) serving one
// self-contained page and relaying a few read-only admin APIs of the control plane, adding
// the admin token itself so the token never reaches the browser.

import { spawn } from "node:child_process";
import { isIP } from "node:net";
import { RemoraError } from "../core/errors.ts";
import { loadRuntime } from "../runtime/detect.ts";
import { parse } from "./args.ts";
import { connectControl, controlFlags, controlHelp } from "./control-client.ts";
import { renderPage } from "./dashboard/page.ts";

const usage = `Usage: remora dashboard [--listen 127.0.0.1:15080] [--open]

Serves a live view of the mesh on http://LISTEN/: topology with edges coloured by success
rate, golden metrics and latency charts per service, endpoint health and ejections,
certificate expiries, config versions and ACK/NACK per proxy. Refreshes every 2 s.

  --listen ADDR   where to serve the page (default 127.0.0.1:15080; keep it on loopback:
                  anyone who reaches it reads what the admin token can read)
  --open          open the page in the default browser

${controlHelp}`;

/** Dashboard path -> control plane admin path; nothing else is relayed, and only GET. */
const RELAYED: Readonly<Record<string, string>> = {
  "/api/stats": "/v1/stats",
  "/api/proxies": "/v1/proxies",
  "/api/endpoints": "/v1/endpoints",
};

export interface DashboardDeps {
  /** One admin GET on the control plane: the parsed JSON, or a RemoraError with one sentence. */
  control: (path: string) => Promise<unknown>;
  controlUrl: string;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", "cache-control": "no-store" } });

export async function createDashboardHandler(d: DashboardDeps): Promise<(req: Request) => Promise<Response>> {
  const page = await renderPage({ controlUrl: d.controlUrl });
  return async (req) => {
    const url = new URL(req.url);
    // A page on another site cannot use a rebound DNS name to read the mesh through us:
    // only IP literals and localhost are served (the CSP already keeps this page's data in).
    const host = url.hostname.replace(/^\[|\]$/g, "");
    if (isIP(host) === 0 && host !== "localhost") return json({ error: `host "${url.hostname}" is not served; open the dashboard by IP address or localhost.` }, 403);
    if (req.method !== "GET" && req.method !== "HEAD") return json({ error: `${req.method} is not allowed; the dashboard is read-only.` }, 405);
    if (url.pathname === "/" || url.pathname === "/index.html") {
      return new Response(page.html, {
        headers: { "content-type": "text/html; charset=utf-8", "content-security-policy": page.csp, "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "cache-control": "no-store" },
      });
    }
    const target = RELAYED[url.pathname];
    if (target === undefined) return json({ error: `no such page: ${url.pathname}.` }, 404);
    const windowText = url.searchParams.get("window");
    if (windowText !== null && !/^[0-9a-z.]{1,16}$/.test(windowText)) return json({ error: `window: "${windowText}" is not a duration (e.g. 30s).` }, 400);
    try {
      return json(await d.control(target === "/v1/stats" && windowText !== null ? `${target}?window=${windowText}` : target));
    } catch (e) {
      const message = e instanceof RemoraError ? e.message : `the control plane could not be asked: ${String(e)}.`;
      return json({ error: message }, 502);
    }
  };
}

function openBrowser(url: string): void {
  const command = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  try {
    const child = spawn(command, [url], { stdio: "ignore", detached: true });
    child.on("error", () => console.error(`remora dashboard: could not run ${command}; open ${url} yourself.`));
    child.unref();
  } catch {
    console.error(`remora dashboard: could not run ${command}; open ${url} yourself.`);
  }
}

export async function dashboardCommand(argv: string[]): Promise<number> {
  const { values } = parse("dashboard", argv, { listen: { type: "string", default: "127.0.0.1:15080" }, open: { type: "boolean" }, help: { type: "boolean" }, ...controlFlags });
  if (values.help) return console.log(usage), 0;
  const client = await connectControl(values);
  const handler = await createDashboardHandler({ control: (path) => client.request("GET", path), controlUrl: client.url });
  const runtime = await loadRuntime();
  const listener = await runtime.serve({ listen: values.listen, handler: (req) => handler(req) });
  const [host = "127.0.0.1"] = listener.address.split(/:(?=\d+$)/);
  const shown = host === "0.0.0.0" || host === "::" || host === "[::]" ? "127.0.0.1" : host;
  const url = `http://${shown.includes(":") && !shown.startsWith("[") ? `[${shown}]` : shown}:${listener.port}/`;
  console.log(`remora dashboard: ${url} (control plane ${client.url}); Ctrl-C to stop`);
  if (values.open) openBrowser(url);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  await listener.close(500);
  client.close();
  return 0;
}
