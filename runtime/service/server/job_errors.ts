/**
 * What the job queue (job_manager.ts) refuses, as domain errors: no HTTP status, no headers.
 * The app's one `onError` (app.ts) maps each to its status and problem body.
 *
 * @example
 * ```ts
 * try { jobs.get(id); } catch (e) { if (e instanceof JobNotFound) console.log(e.message); }
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

/** The base of every job-queue refusal. */
export class JobQueueError extends Error {
  override name = "JobQueueError";
  constructor(message: string, readonly problems?: Problem[]) {
    super(message);
  }
}

/** A submitted configuration is not valid (every problem listed). */
export class InvalidConfig extends JobQueueError {
  override name = "InvalidConfig";
}
/** No job by that id, in memory or on disk. */
export class JobNotFound extends JobQueueError {
  override name = "JobNotFound";
}
/** No actor by that id in the job. */
export class ActorNotFound extends JobQueueError {
  override name = "ActorNotFound";
}
/** The job has finished: there is nothing to cancel. */
export class JobNotCancellable extends JobQueueError {
  override name = "JobNotCancellable";
}
/** The job is not running, so its actors cannot be signalled. */
export class JobNotRunning extends JobQueueError {
  override name = "JobNotRunning";
}
/** The actor has no live process to signal. */
export class ActorNotAlive extends JobQueueError {
  override name = "ActorNotAlive";
}
/** `maxQueuedJobs` jobs are already waiting. */
export class QueueFull extends JobQueueError {
  override name = "QueueFull";
}
/** The coordinator is closing and takes no new jobs. */
export class ShuttingDown extends JobQueueError {
  override name = "ShuttingDown";
}
/** A job could not be stored; `noSpace` when the disk or quota is full. */
export class StorageError extends JobQueueError {
  override name = "StorageError";
  constructor(message: string, readonly noSpace: boolean) {
    super(message);
  }
}
