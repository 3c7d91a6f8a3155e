// A value made on first use by an async load (a dynamic import, mostly): the load runs once,
// callers share its promise, and the value is readable at once after it settled, for code
// that must not wait (closing sessions that can exist only once it loaded).

export interface Lazy<T> {
  /** Loads on the first call; every call gets the same promise. */
  get(): Promise<T>;
  /** The value once loaded, else undefined (nothing is loaded by reading this). */
  readonly loaded: T | undefined;
}

export function lazy<T>(load: () => Promise<T>): Lazy<T> {
  let promise: Promise<T> | undefined;
  let value: T | undefined;
  return {
    get: () => (promise ??= load().then((v) => (value = v))),
    get loaded() {
      return value;
    },
  };
}
