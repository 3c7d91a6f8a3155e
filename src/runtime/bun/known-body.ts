// A Response the Bun upstream built from bytes it already held (a small answer that came
// with its head): the native listener writes those bytes with the head at once, instead of
// reading them back through a ReadableStream, its reader and a promise per read (issue 8:
// about a dozen objects per request in each sidecar). Any stage that replaced the Response
// or read its body makes the lookup miss, and the stream is read as for any other answer.

const bodies = new WeakMap<Response, Uint8Array>();

/** Marks `res` as made from `bytes` (which its body holds a copy of); returns it. */
export function rememberBytes(res: Response, bytes: Uint8Array): Response {
  bodies.set(res, bytes);
  return res;
}

/** The bytes `res` was made from, unless its body was read since. */
export function knownBytes(res: Response): Uint8Array | undefined {
  const bytes = bodies.get(res);
  return bytes === undefined || res.bodyUsed ? undefined : bytes;
}
