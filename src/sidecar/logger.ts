// The logging surface the sidecar needs: a subset of pino's, so the CLI passes pino and
// tests pass a recorder.

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
