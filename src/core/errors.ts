// Typed errors with stable codes: callers branch on `code`, people read `message`
// (one sentence naming the field, file or peer).

export type ErrorCode =
  | "ERR_POLICY_INVALID"
  | "ERR_CONFIG_INVALID"
  | "ERR_DURATION"
  | "ERR_PEM"
  | "ERR_SVID_INVALID"
  | "ERR_PEER_IDENTITY"
  | "ERR_SPIFFE_ID"
  | "ERR_CSR_INVALID"
  | "ERR_CA"
  | "ERR_UPSTREAM"
  | "ERR_LISTEN"
  | "ERR_FILE"
  | "ERR_CONTROL_REFUSED"
  | "ERR_CONTROL_UNREACHABLE"
  | "ERR_AUTH"
  | "ERR_FORBIDDEN"
  | "ERR_NOT_FOUND"
  | "ERR_REQUEST_INVALID"
  | "ERR_CONTROL"
  | "ERR_REDIRECT"
  | "ERR_VIP"
  | "ERR_METRICS"
  | "ERR_RUN"
  | "ERR_STORE"
  | "ERR_NO_ROUTE"
  | "ERR_TUNNEL_REFUSED";

export class RemoraError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "RemoraError";
  }
}

export function isRemoraError(e: unknown, code?: ErrorCode): e is RemoraError {
  return e instanceof RemoraError && (code === undefined || e.code === code);
}
