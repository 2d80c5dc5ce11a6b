/**
 * Liveness by pings: an actor that has said nothing (no pong, no message at all) for longer than
 * the ping timeout is hung. The incarnation checks once per ping interval. A check that itself
 * runs late means the coordinator's own event loop stalled, and the actor's answers may be
 * waiting unread: the actor is not blamed for that stall.
 */

export class PingWatch {
  private lastSeen: number;
  private lastCheck: number;

  /** `now`: milliseconds; the wall clock by default, a fake one in unit tests. */
  constructor(private readonly intervalMs: number, private readonly timeoutMs: number, private readonly now: () => number = Date.now) {
    this.lastSeen = this.lastCheck = now();
  }

  /** The actor said something. */
  heard(): void {
    this.lastSeen = this.now();
  }

  /** The check of one interval: true once the actor has been silent for longer than the timeout. */
  silentTooLong(): boolean {
    const now = this.now();
    if (now - this.lastCheck > 2 * this.intervalMs) this.lastSeen = Math.max(this.lastSeen, now - this.intervalMs);
    this.lastCheck = now;
    return now - this.lastSeen > this.timeoutMs;
  }
}
