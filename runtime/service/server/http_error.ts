/**
 * The one HTTP error type of the coordinator's API. Routes throw it; the app's single `onError`
 * turns it into `{ error: { status, code, message, problems? } }`. Anything else that escapes a
 * route is a bug and becomes a 500 without internals.
 *
 * @example
 * ```ts
 * throw new HttpError(404, "job_not_found", `no job ${id}`);
 * ```
 */

/** One thing wrong with a request: where (a key path) and what. */
export interface Problem {
  /** Dotted key path in the body or query (`trainer.total_steps`), or `(body)`, `(query)`. */
  path: string;
  message: string;
  /** Where the value came from (for configuration problems). */
  source?: string;
  value?: unknown;
}

export type HttpStatus = 400 | 401 | 403 | 404 | 409 | 413 | 415 | 421 | 500 | 503 | 507;

export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: HttpStatus,
    /** Stable machine-readable code, e.g. `invalid_config`. */
    readonly code: string,
    message: string,
    readonly problems?: Problem[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toBody(): { error: { status: number; code: string; message: string; problems?: Problem[] } } {
    return { error: { status: this.status, code: this.code, message: this.message, ...(this.problems ? { problems: this.problems } : {}) } };
  }
}
