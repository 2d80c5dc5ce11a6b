/**
 * Checkpoint writes behind the training loop: a step hands its snapshots over and goes on while
 * the files are written and fsynced off the event loop, so the actors are not kept waiting for
 * the disk. At most one write is in flight: the next one starts after it, in step order, and
 * whoever needs the checkpoint on disk (the end of the next step, a cancel, the end of the job,
 * an error on the way out) awaits `settled()`. A failed write is kept and raised by `settled()` and
 * `check()`, as the same error a synchronous save would have thrown.
 */
import type { CheckpointStore } from "./store.ts";

export class CheckpointWriter {
  private pending: Promise<void> = Promise.resolve();
  private failure: unknown;
  private failed = false;

  constructor(readonly store: CheckpointStore) {}

  /**
   * Waits for the write before (raising its failure), then starts writing `step`. Resolves once
   * the write has started, not once it is on disk: `settled()` says that.
   */
  async write<T>(step: number, states: Map<string, unknown>, trainer: T): Promise<void> {
    await this.settled();
    this.pending = this.store.save(step, states, trainer).then(
      () => {},
      (e: unknown) => {
        this.failure = e;
        this.failed = true;
      },
    );
  }

  /** Resolves once no write is in flight; throws the failure of the last one, if it failed. */
  async settled(): Promise<void> {
    await this.pending;
    this.check();
  }

  /** Throws the failure of a write that has already failed; never waits. */
  check(): void {
    if (this.failed) throw this.failure;
  }

  /** Steps durably on disk, newest first (a write in flight is not among them until it ends). */
  async durableSteps(): Promise<number[]> {
    await this.settled();
    return this.store.steps();
  }
}
