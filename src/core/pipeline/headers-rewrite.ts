// Headers-and-rewrite stage: the rule's request header edits and path rewrite on the way
// out, its response header edits on the way back (Istio's Headers and HTTPRewrite; Envoy's
// request_headers_to_add/remove and prefix_rewrite). Removals run first, then set, then add.

import type { HeaderEdits, PathRewrite, RequestMatch, RouteRule } from "../policy/types.ts";
import type { Handler, RequestContext, Stage } from "./context.ts";
import { routedOf, type Routed } from "./match.ts";
import { forwardRequest } from "../forward-request.ts";
import { carryTrailers } from "../trailers.ts";

export function editHeaders(headers: Headers, edits: HeaderEdits): void {
  for (const name of edits.remove) headers.delete(name);
  for (const [name, value] of Object.entries(edits.set)) headers.set(name, value);
  for (const [name, value] of Object.entries(edits.add)) headers.append(name, value);
}

/**
 * The new path: `path` replaces it whole; `prefix` replaces the prefix the rule matched
 * on (Envoy prefix_rewrite), or the whole path when the rule did not match on a prefix.
 */
export function rewritePath(pathname: string, rewrite: PathRewrite, matched: RequestMatch | undefined): string {
  if (rewrite.kind === "path") return rewrite.value;
  const prefix = matched?.path?.kind === "prefix" ? matched.path.value : undefined;
  if (prefix === undefined || !pathname.startsWith(prefix)) return rewrite.value;
  const rest = pathname.slice(prefix.length);
  // "/charge" -> "/v2/charge" rewrites "/charge/1" to "/v2/charge/1", never "/v2/charge//1".
  return rewrite.value.endsWith("/") && rest.startsWith("/") ? rewrite.value + rest.slice(1) : rewrite.value + rest;
}

export function headersRewrite(): Stage {
  // Not async when there is nothing to do: most requests pass through (issue 8: allocation).
  return (next) => (req, ctx) => {
    const routed = routedOf(ctx);
    const rule = routed?.rule;
    if (rule === undefined || (rule.requestHeaders === undefined && rule.rewrite === undefined && rule.responseHeaders === undefined)) {
      return next(req, ctx);
    }
    return rewritten(next, req, ctx, routed!, rule);
  };
}

async function rewritten(next: Handler, req: Request, ctx: RequestContext, routed: Routed, rule: RouteRule): Promise<Response> {
  let out = req;
  if (rule.requestHeaders !== undefined || rule.rewrite !== undefined) {
    const url = new URL(req.url);
    if (rule.rewrite !== undefined) url.pathname = rewritePath(url.pathname, rule.rewrite, routed.matched);
    const headers = new Headers(req.headers);
    if (rule.requestHeaders !== undefined) editHeaders(headers, rule.requestHeaders);
    out = forwardRequest(req, { url, headers });
  }
  const res = await next(out, ctx);
  if (rule.responseHeaders === undefined) return res;
  // A fetch Response's headers may be immutable: answer with a copy.
  const headers = new Headers(res.headers);
  editHeaders(headers, rule.responseHeaders);
  return carryTrailers(res, new Response(res.body, { status: res.status, statusText: res.statusText, headers }));
}
