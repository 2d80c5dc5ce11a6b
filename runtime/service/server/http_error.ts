/**
 * The HTTP error type of the coordinator's API: the app's routes and middleware throw it (the job
 * queue throws domain errors, job_errors.ts); the app's single `onError` turns both into `{ error: { status, code, message, problems? } }`. Anything else that escapes a
 * route is a bug and becomes a 500 without internals.
 *
 * @example
 * ```ts
 * throw new HttpError(404, "job_not_found", `no job ${id}`);
 * ```
 */

import type { Problem } from "./job_errors.ts";

export type { Problem };

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
