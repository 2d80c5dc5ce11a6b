/**
 * An actor's latest state snapshot and the calls that changed its state since (the replay
 * log): a restarted incarnation gets loadState(snapshot), then the logged calls again. The log
 * also keeps what replaying it would cost, and asks for a new snapshot before that cost passes
 * the recovery budget, so recovery time and memory stay bounded.
 */

export interface LoggedCall {
  method: string;
  args: unknown[];
}

export interface ReplayLogOptions {
  /** Replay time (ms) that triggers a snapshot: max_replay_s. */
  maxReplayMs: number;
  /** Log length that triggers a snapshot (bounds memory). */
  autoSnapshotCalls: number;
}

export class ReplayLog {
  private snapshot: { state: unknown } | undefined;
  private calls: LoggedCall[] = [];
  private costMs = 0;
  private snapshotCostMs = 0;
  private snapshotPending = false;
  /** Snapshots sent to the actor and not answered yet, whoever asked (a checkpoint, this log). */
  private queued = 0;

  /**
   * `takeSnapshot` asks the actor for a snapshot in call order; its result comes back through
   * `snapshotTaken`, when the actor answers.
   */
  constructor(private readonly o: ReplayLogOptions, private readonly takeSnapshot: () => Promise<unknown>) {}

  /** The latest snapshot's state, if there is one. */
  get latestState(): unknown {
    return this.snapshot?.state;
  }

  /** Calls logged since the latest snapshot. */
  get length(): number {
    return this.calls.length;
  }

  /** What replaying the log would take, in ms (the sum of the calls' run times). */
  get replayCostMs(): number {
    return this.costMs;
  }

  /**
   * Logs a completed call that changed state. When replaying the log would take longer than the
   * recovery budget (max_replay_s, or twice what a snapshot costs: a snapshot must be worth
   * taking), or the log grows long, one snapshot is requested; none while it, or any other
   * snapshot sent to the actor (a checkpoint's), is pending.
   */
  record(method: string, args: unknown[], ranMs: number): void {
    this.calls.push({ method, args });
    this.costMs += ranMs;
    const budget = Math.max(this.o.maxReplayMs, 2 * this.snapshotCostMs);
    if (this.snapshotPending || (this.costMs <= budget && this.calls.length < this.o.autoSnapshotCalls)) return;
    // A snapshot already on its way comes after this call (answers come in order) and restarts
    // the log when it is answered: asking for another would take the same state twice.
    if (this.queued > 0) return;
    this.snapshotPending = true;
    // A failed snapshot is the actor's death, handled there; the log just asks again later.
    void this.takeSnapshot().catch(() => {}).finally(() => (this.snapshotPending = false));
  }

  /** A snapshot was sent to the actor (by anyone): until it is answered, it stands for the log's own. */
  snapshotQueued(): void {
    this.queued++;
  }

  /** A snapshot the actor took, `costMs` to take: the log restarts from it. */
  snapshotTaken(state: unknown, costMs: number): void {
    this.queued = Math.max(0, this.queued - 1);
    this.snapshotCostMs = costMs;
    this.restartFrom(state);
  }

  /** A snapshot the actor answered with an error: the log asks again when it next passes its budget. */
  snapshotFailed(): void {
    this.queued = Math.max(0, this.queued - 1);
  }

  /**
   * A state loaded from outside (a checkpoint). Set when the load is answered, in call order,
   * so the calls after it are logged against it.
   */
  snapshotLoaded(state: unknown): void {
    this.restartFrom(state);
  }

  /** What a new incarnation must run to get the state back: loadState(snapshot), then the log. */
  restoreCalls(): LoggedCall[] {
    const load = this.snapshot ? [{ method: "__loadState", args: [this.snapshot.state] }] : [];
    return [...load, ...this.calls];
  }

  private restartFrom(state: unknown): void {
    this.snapshot = { state };
    this.calls = [];
    this.costMs = 0;
  }
}
