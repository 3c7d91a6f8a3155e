// The parts of a request URL that readers along one request's path look at (router, access
// record, the HTTP/1.1 client): parsed once per URL string, not once per reader, since every
// URL getter call also makes a new string (issue 8: allocation per request sets the GC's pace).

export interface UrlParts {
  readonly href: string;
  readonly host: string;
  readonly hostname: string;
  readonly pathname: string;
  readonly search: string;
}

// One entry: a request's readers run one after another, so the last URL is nearly always
// the one asked for; a miss only costs the parse it would have cost anyway.
let last: UrlParts | undefined;

/** Like `new URL(href)` for reading; throws the same TypeError for an invalid URL. */
export function urlParts(href: string): UrlParts {
  if (last !== undefined && last.href === href) return last;
  const url = new URL(href);
  last = { href, host: url.host, hostname: url.hostname, pathname: url.pathname, search: url.search };
  return last;
}
