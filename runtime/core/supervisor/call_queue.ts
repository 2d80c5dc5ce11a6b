/**
 * An actor's calls, queued or in flight, in submission order. Calls are pipelined: each is sent
 * as soon as there is a live process, and the process answers them in order, so the head of the
 * queue is the call being served and every answer must be for it. When a process dies, the
 * calls it had been sent are lost: each is counted and either kept for the next incarnation, in
 * its place, or given up on once its retries run out.
 */

/** user: a caller's call; snapshot/load: takeSnapshot/loadSnapshot; restore: rebuilding state. */
export type CallKind = "user" | "snapshot" | "load" | "restore";

export interface PendingCall {
  id: number;
  kind: CallKind;
  method: string;
  args: unknown[];
  deadlineS: number;
  /** Times this call was lost to a death. */
  attempts: number;
  sent: boolean;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

/** The lost calls of one death, sorted. */
export interface LostCalls {
  /** User calls kept for the next incarnation, each with its `attempts` counted. */
  retried: PendingCall[];
  /** User calls out of retries, now removed from the queue: the caller must reject them. */
  exhausted: PendingCall[];
}

type Settle = Pick<PendingCall, "resolve" | "reject">;
const ignore: Settle = { resolve: () => {}, reject: () => {} };

export class CallQueue {
  private calls: PendingCall[] = [];
  private nextId = 1;

  /** `transmit` puts a call on the wire to the live process. */
  constructor(private readonly transmit: (call: PendingCall) => void) {}

  /** Calls queued or in flight. */
  get length(): number {
    return this.calls.length;
  }

  /** The call the process is serving now: the head, once it has been sent. */
  get serving(): PendingCall | undefined {
    const head = this.calls[0];
    return head?.sent ? head : undefined;
  }

  /** Queues a call at the end; the caller sends it when there is a process to send it to. */
  push(kind: CallKind, method: string, args: unknown[], deadlineS: number, settle: Settle): PendingCall {
    const call = this.make(kind, method, args, deadlineS, settle);
    this.calls.push(call);
    return call;
  }

  /**
   * Puts the calls that restore state ahead of everything else (they must run first on a new
   * incarnation). Nobody waits on them: their failures are the incarnation's. Returns how many.
   */
  prependRestore(calls: readonly { method: string; args: unknown[] }[], deadlineS: number): number {
    const restore = calls.map((c) => this.make("restore", c.method, c.args, deadlineS, ignore));
    this.calls = [...restore, ...this.calls];
    return restore.length;
  }

  send(call: PendingCall): void {
    call.sent = true;
    this.transmit(call);
  }

  /** Sends every call not sent yet, in order (a new incarnation is ready). */
  sendUnsent(): void {
    for (const call of this.calls) if (!call.sent) this.send(call);
  }

  /**
   * Takes the call answer `id` settles. Answers come in order: one for anything but the call
   * being served is a protocol breach, and nothing is taken (undefined).
   */
  take(id: number): PendingCall | undefined {
    if (this.serving?.id !== id) return undefined;
    return this.calls.shift();
  }

  /**
   * Sorts the calls lost to a death. Restore calls are dropped (they are rebuilt from the replay
   * log on the next restore). Every call that had been sent is unsent and counted as lost once,
   * unless `counted` is false (a group restart of an innocent rank); a user call lost more than
   * `maxRetries` times (−1: no limit) is removed and returned as exhausted. Unsent calls keep
   * their place and count.
   */
  sortLost(counted: boolean, maxRetries: number): LostCalls {
    const lost: LostCalls = { retried: [], exhausted: [] };
    const keep: PendingCall[] = [];
    for (const call of this.calls) {
      if (call.kind === "restore") continue;
      if (call.sent) {
        call.sent = false;
        if (counted) call.attempts++;
        if (call.kind === "user") {
          const exhausted = maxRetries !== -1 && call.attempts > maxRetries;
          (exhausted ? lost.exhausted : lost.retried).push(call);
          if (exhausted) continue;
        }
      }
      keep.push(call);
    }
    this.calls = keep;
    return lost;
  }

  /** Removes and returns every call (the actor failed or stopped: they are all rejected). */
  drain(): PendingCall[] {
    const calls = this.calls;
    this.calls = [];
    return calls;
  }

  private make(kind: CallKind, method: string, args: unknown[], deadlineS: number, settle: Settle): PendingCall {
    return { id: this.nextId++, kind, method, args, deadlineS, attempts: 0, sent: false, resolve: settle.resolve, reject: settle.reject };
  }
}
