// Routing by logical name: which destination a request is for, read from the authority
// the app used (`http://payments/charge`, `Host: payments.default.svc:80`).

import { forwardRequest } from "./forward-request.ts";
import { urlParts } from "./url-parts.ts";

/** Kubernetes service DNS suffixes an app may append to a logical name. */
const SERVICE_SUFFIXES = [".svc.cluster.local", ".svc"] as const;
const TRAILING_DOT = /\.$/;
const DIGITS = /^\d+$/;
const PORT_SUFFIX = /:\d*$/;

/** The host the client named, lowercased, without port or trailing dot; undefined if none. */
export function requestHost(req: Request): string | undefined {
  const fromUrl = safeHostname(req.url);
  const raw = fromUrl !== undefined && fromUrl !== "" ? fromUrl : hostHeader(req.headers.get("host"));
  if (raw === undefined || raw === "") return undefined;
  return raw.toLowerCase().replace(TRAILING_DOT, "");
}

/**
 * The logical destination name: `payments`, `payments:80`, `payments.default`,
 * `payments.default.svc`, `payments.default.svc.cluster.local` and
 * `payments.svc.cluster.local` all name `payments`. Other names are returned unchanged.
 */
export function destinationName(req: Request): string | undefined {
  const host = requestHost(req);
  return host === undefined ? undefined : logicalName(host);
}

export function logicalName(host: string): string {
  let name = host.toLowerCase().replace(TRAILING_DOT, "");
  let hadSuffix = false;
  for (const suffix of SERVICE_SUFFIXES) {
    if (name.endsWith(suffix) && name.length > suffix.length) {
      name = name.slice(0, -suffix.length);
      hadSuffix = true;
      break;
    }
  }
  const labels = name.split(".");
  // `<service>.<namespace>` (Kubernetes search-path form); an IP or longer name is not one.
  if (labels.length === 2 && (hadSuffix || !DIGITS.test(labels[1] ?? ""))) return labels[0] ?? name;
  return name;
}

function safeHostname(url: string): string | undefined {
  try {
    return urlParts(url).hostname;
  } catch {
    return undefined;
  }
}

function hostHeader(value: string | null): string | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed.startsWith("[")) return trimmed.slice(0, trimmed.indexOf("]") + 1);
  return trimmed.replace(PORT_SUFFIX, "");
}

/** VIP -> service name, from the control plane's `services: { name: { vip } }` section. */
export function vipTable(services: Readonly<Record<string, { vip: string }>> | undefined): ReadonlyMap<string, string> {
  return new Map(Object.entries(services ?? {}).map(([name, s]) => [s.vip, name]));
}

/**
 * A request whose authority is a service's virtual IP (`http://240.240.0.2/charge`, what a
 * redirected connection to the VIP carries when the app dialled the address itself) is
 * readdressed to the service name, port kept, so it shares the name's policy, balancer and
 * outlier state; the peer then sees `Host: payments`. Any other request is returned as is.
 */
export function readdressVip(req: Request, vips: ReadonlyMap<string, string>): Request {
  const host = vips.size === 0 ? undefined : requestHost(req);
  const name = host === undefined ? undefined : vips.get(host);
  if (name === undefined) return req;
  const url = new URL(req.url);
  url.hostname = name;
  const headers = new Headers(req.headers);
  if (headers.has("host")) headers.set("host", url.host);
  return forwardRequest(req, { url, headers });
}
