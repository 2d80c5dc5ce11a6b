/**
 * Checkpoint writes behind the training loop: a step hands over its snapshots (still on their
 * way from the actors) and goes on while they arrive and the files are written and fsynced off
 * the event loop, so the actors are not kept waiting for the transfer or the disk. At most one
 * write is in flight: the next one starts after it, in step order, and whoever needs the
 * checkpoint on disk (the end of the next step, a cancel, the end of the job, an error on the way
 * out) awaits `settled()`. A failed write is kept and raised by `settled()` and `check()`, as the
 * same error a synchronous save would have thrown.
 */
import type { CheckpointStore } from "./store.ts";

export class CheckpointWriter {
  private pending: Promise<void> = Promise.resolve();
  private failure: unknown;
  private failed = false;

  constructor(readonly store: CheckpointStore) {}

  /**
   * Waits for the write before (raising its failure), then writes `step` once its actor `states`
   * come in. Resolves once the write is under way, not once it is on disk: `settled()` says that.
   * The trainer state is copied now; the states are the actors' snapshots, taken in their call
   * order (the state the step left), whenever they arrive.
   */
  async write<T>(step: number, states: Promise<Map<string, unknown>>, trainer: T): Promise<void> {
    states.catch(() => {}); // read below, once the write before is done
    const held = structuredClone(trainer);
    await this.settled();
    this.pending = states.then((s) => this.store.save(step, s, held)).then(
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
