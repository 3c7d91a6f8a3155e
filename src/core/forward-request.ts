// Sending a request on with another URL or other headers. A Request's URL and headers
// are fixed once made, so every stage that changes them builds a new one; its body stream
// moves over unread (it can be read only once, by whoever sends the new request).

export function forwardRequest(req: Request, change: { url?: string | URL; headers: Headers }): Request {
  const hasBody = req.body !== null && req.method !== "GET" && req.method !== "HEAD";
  return new Request(change.url ?? req.url, {
    method: req.method,
    headers: change.headers,
    body: hasBody ? req.body : null,
    signal: req.signal,
    redirect: "manual",
    // Required by the fetch implementations for a streaming request body.
    ...(hasBody ? { duplex: "half" } : {}),
  } as RequestInit);
}
