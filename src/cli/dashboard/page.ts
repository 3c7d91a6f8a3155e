// The dashboard's one page: landmarks and empty sections the client script fills, with the
// stylesheet and script inline and a Content-Security-Policy that allows exactly those two.

import { CLIENT_SCRIPT } from "./client.ts";
import { STYLE } from "./style.ts";

export interface Page {
  html: string;
  /** The Content-Security-Policy header to serve the page with. */
  csp: string;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function sha256(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  let bin = "";
  for (const b of digest) bin += String.fromCharCode(b);
  return `'sha256-${btoa(bin)}'`;
}

export async function renderPage(o: { controlUrl: string }): Promise<Page> {
  const section = (id: string, title: string) =>
    `<section aria-labelledby="${id}-h"><h2 id="${id}-h">${title}</h2><div id="${id}"><p class="empty">Loading…</p></div></section>`;
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>remora dashboard</title>
<link rel="icon" href="data:,">
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>remora</h1>
<span class="control" title="control plane">${escapeHtml(o.controlUrl)}</span>
<span class="spacer"></span>
<label>Window <select id="window" data-testid="window"><option value="10s">10s</option><option value="30s">30s</option><option value="1m">1m</option><option value="5m">5m</option></select></label>
<span class="updated" id="updated" data-testid="updated">connecting…</span>
</header>
<main>
<div class="error" id="error" role="alert" data-testid="error"></div>
${section("topology", "Topology")}
${section("services", "Services")}
${section("edges", "Edges (caller → destination)")}
${section("endpoints", "Endpoints")}
${section("proxies", "Proxies")}
</main>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
  const csp = [
    "default-src 'none'",
    `script-src ${await sha256(CLIENT_SCRIPT)}`,
    `style-src ${await sha256(STYLE)}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join("; ");
  return { html, csp };
}
