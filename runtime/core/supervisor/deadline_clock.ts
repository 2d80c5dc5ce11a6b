/**
 * The deadline of the call an actor is serving now (the head of its queue). Only the head runs,
 * so only the head can be late: one timer serves the whole queue. It is re-aimed lazily, never
 * cleared and set per call: when the next head's deadline is later than the timer, the timer
 * fires early, finds the deadline not reached and aims again. Small calls stay cheap.
 */
import { after, type Timer } from "../timers.ts";

/** Where the time comes from: the runtime's by default, a fake one in unit tests. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Calls `fn` once, `ms` from now (see timers.ts: long delays never fire early). */
  after(ms: number, fn: () => void): Timer;
}

export const realClock: Clock = { now: () => performance.now(), after: (ms, fn) => after(ms, fn) };

export class DeadlineClock {
  private watched: number | undefined;
  private since = 0;
  private deadlineAt = 0;
  private timer: Timer | undefined;
  private timerAt = 0;

  /** `expired(id)` is called when call `id`, still watched, has run past its deadline. */
  constructor(private readonly expired: (callId: number) => void, private readonly clock: Clock = realClock) {}

  /** The call whose deadline runs now, if any. */
  get watching(): number | undefined {
    return this.watched;
  }

  /** Milliseconds the watched call has been running (since `watch`). */
  runningMs(): number {
    return this.clock.now() - this.since;
  }

  /** Starts the deadline of call `callId`, which the actor starts serving now. */
  watch(callId: number, deadlineS: number): void {
    this.watched = callId;
    this.since = this.clock.now();
    this.deadlineAt = this.since + deadlineS * 1000;
    // A timer due before this deadline is kept: it fires early and re-aims (see checkDeadline).
    if (this.timer === undefined || this.deadlineAt < this.timerAt) this.aim(this.deadlineAt);
  }

  /** No call is being served now; the timer is left to fire and find nothing to do. */
  unwatch(): void {
    this.watched = undefined;
  }

  /** Cancels the timer (the incarnation is gone); returns the call that was watched. */
  stop(): number | undefined {
    const watched = this.watched;
    this.watched = undefined;
    this.timer?.cancel();
    this.timer = undefined;
    return watched;
  }

  private aim(at: number): void {
    this.timer?.cancel();
    this.timerAt = at;
    this.timer = this.clock.after(at - this.clock.now(), () => this.check());
  }

  private check(): void {
    this.timer = undefined;
    if (this.watched === undefined) return;
    if (this.clock.now() >= this.deadlineAt) this.expired(this.watched);
    else this.aim(this.deadlineAt);
  }
}
