// Routing by logical name: which destination a request is for, read from the authority
// the app used (`http://payments/charge`, `Host: payments.default.svc:80`).

/** Kubernetes service DNS suffixes an app may append to a logical name. */
const SERVICE_SUFFIXES = [".svc.cluster.local", ".svc"] as const;

/** The host the client named, lowercased, without port or trailing dot; undefined if none. */
export function requestHost(req: Request): string | undefined {
  const fromUrl = safeHostname(req.url);
  const raw = fromUrl !== undefined && fromUrl !== "" ? fromUrl : hostHeader(req.headers.get("host"));
  if (raw === undefined || raw === "") return undefined;
  return raw.toLowerCase().replace(/\.$/, "");
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
  let name = host.toLowerCase().replace(/\.$/, "");
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
  if (labels.length === 2 && (hadSuffix || !/^\d+$/.test(labels[1] ?? ""))) return labels[0] ?? name;
  return name;
}

function safeHostname(url: string): string | undefined {
  try {
    return new URL(url).hostname;
  } catch {
    return undefined;
  }
}

function hostHeader(value: string | null): string | undefined {
  if (value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed.startsWith("[")) return trimmed.slice(0, trimmed.indexOf("]") + 1);
  return trimmed.replace(/:\d*$/, "");
}
