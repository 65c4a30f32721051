/**
 * Errors the routes raise on purpose: a status, the field at fault, a message
 * that says what is expected, and (for malformed requests) the reason counted
 * in bootherd_http_dropped_total.
 */
export class HttpError extends Error {
  constructor(readonly status: number, readonly field: string, message: string, readonly dropReason?: string) {
    super(message);
    this.name = 'HttpError';
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  readonly statusCode: number;
  readonly error: string;
  readonly message: string;
  /** The request field at fault (`ip`, `macs[0]`), when there is one. */
  readonly field?: string;
}
