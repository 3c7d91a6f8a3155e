// The logging surface the sidecar needs: a subset of pino's, so the CLI passes its own
// pino-shaped JSON logger (src/cli/log.ts), embedders may pass pino, and tests a recorder.

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
