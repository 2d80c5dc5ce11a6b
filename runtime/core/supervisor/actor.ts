/**
 * A supervised actor: one role at one rank, across all its incarnations, and its life cycle
 * (start, restore, death, restart, stop). It composes three parts: the call queue (submission
 * order, pipelined to the process, lost calls retried), the deadline clock of the call being
 * served, and the replay log (latest snapshot, calls since it). Policy (restart or fail) belongs
 * to the Supervisor; the actor reports each death and does what it is told.
 */
import type { Message } from "../ipc/messages.ts";
import { after } from "../timers.ts";
import { CallQueue, type CallKind, type PendingCall } from "./call_queue.ts";
import { DeadlineClock } from "./deadline_clock.ts";
import { ActorCallError, ActorDiedError, ActorSpawnError, DeadlineExceededError, type DeathCause } from "./errors.ts";
import { Incarnation, type IncarnationOptions, type ReadyInfo } from "./incarnation.ts";
import { ReplayLog } from "./replay_log.ts";

export type ActorState = "starting" | "alive" | "restoring" | "dead" | "restarting" | "failed" | "stopping" | "stopped";

export interface CallOptions {
  /** Seconds this call may run once the actor starts on it; past that the actor is killed as hung. */
  deadline?: number;
}

/** What the supervisor gives each actor. */
export interface ActorHooks {
  /** Called once per incarnation death; the supervisor answers by restartAfter() or fail(). */
  died(actor: Actor, cause: DeathCause): void;
  /** A restarted incarnation has its state back and serves calls. */
  restored(actor: Actor, latencyMs: number): void;
  /** An intended stop completed. */
  stopped(actor: Actor, cause: DeathCause): void;
  /** A lost call is being sent again. */
  retried(actor: Actor, method: string, attempt: number): void;
}

export interface ActorOptions {
  id: string;
  role: string;
  rank: number;
  group: string;
  maxTaskRetries: number;
  defaultDeadlineS: number;
  /** Replay log length that triggers an automatic snapshot (bounds memory). */
  autoSnapshotCalls: number;
  /** Replay time (ms) that triggers an automatic snapshot (bounds recovery time). */
  maxReplayMs: number;
  incarnation: Omit<IncarnationOptions, "number" | "actor" | "role" | "rank">;
}

export class Actor {
  readonly id: string;
  readonly role: string;
  readonly rank: number;
  readonly group: string;
  state: ActorState = "starting";
  /** Restarts so far (each new incarnation after the first). */
  restarts = 0;
  /** Times of recent restarts, for the intensity window. */
  readonly restartTimes: number[] = [];
  /** Restarts since the actor last completed a call: the exponent of its restart backoff. */
  consecutiveRestarts = 0;
  private inc: Incarnation | undefined;
  private incarnations = 0;
  private readonly queue = new CallQueue((call) => this.transmit(call));
  private readonly deadline = new DeadlineClock((callId) => this.deadlinePassed(callId));
  private readonly replay: ReplayLog;
  private info: ReadyInfo = { methods: [], readOnly: [], stateful: false };
  private restoring = 0;
  private diedAt = 0;
  private stopWaiters: (() => void)[] = [];
  private lastCause: DeathCause | undefined;
  private lastLines: string[] = [];
  private aliveWaiters: { resolve(): void; reject(e: Error): void }[] = [];
  private markStarted!: () => void;
  private markStartFailed!: (e: Error) => void;
  private readonly started = new Promise<void>((resolve, reject) => {
    this.markStarted = resolve;
    this.markStartFailed = reject;
  });

  constructor(private readonly o: ActorOptions, private readonly hooks: ActorHooks) {
    this.started.catch(() => {}); // observed through start(); never an unhandled rejection
    this.id = o.id;
    this.role = o.role;
    this.rank = o.rank;
    this.group = o.group;
    this.replay = new ReplayLog(o, () => this.takeSnapshot());
  }

  get incarnation(): number {
    return this.incarnations;
  }

  get pid(): number | undefined {
    return this.inc?.alive || this.state === "starting" || this.state === "restoring" ? this.inc?.pid : undefined;
  }

  /** The live incarnation, for fault injection. */
  get current(): Incarnation | undefined {
    return this.inc;
  }

  /** The latest snapshot taken, if any. */
  get latestSnapshot(): unknown {
    return this.replay.latestState;
  }

  /** Resolves once the actor serves calls (now, or after its current restart); rejects if it fails or stops. */
  whenAlive(): Promise<void> {
    if (this.state === "alive") return Promise.resolve();
    if (this.state === "failed" || this.state === "stopped" || this.state === "stopping") return Promise.reject(this.diedError(`it is ${this.state}`));
    return new Promise((resolve, reject) => this.aliveWaiters.push({ resolve, reject }));
  }

  private settleAliveWaiters(error?: Error): void {
    for (const w of this.aliveWaiters.splice(0)) error ? w.reject(error) : w.resolve();
  }

  /** Calls queued or in flight. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Calls `method(...args)` in the actor. Calls keep submission order. Resolves with the
   * method's value; rejects with ActorCallError, ActorDiedError or DeadlineExceededError.
   */
  call<T = unknown>(method: string, args: unknown[] = [], options: CallOptions = {}): Promise<T> {
    return this.enqueue("user", method, args, options.deadline ?? this.o.defaultDeadlineS) as Promise<T>;
  }

  /**
   * Loads a state from outside (a checkpoint on disk), in call order; it becomes the snapshot
   * that later restarts restore.
   */
  async loadSnapshot(state: unknown): Promise<void> {
    if (!this.info.stateful) throw new TypeError(`role ${this.role} of ${this.id} has no getState/loadState`);
    await this.enqueue("load", "__loadState", [state], this.o.defaultDeadlineS);
  }

  /** Takes a snapshot (getState) in call order; later restarts restore it, then replay calls after it. */
  async takeSnapshot(): Promise<unknown> {
    if (!this.info.stateful) return undefined;
    return await this.enqueue("snapshot", "__getState", [], this.o.defaultDeadlineS);
  }

  /**
   * Starts the first incarnation. Resolves once the actor serves calls (after restarts, if the
   * first incarnations died); rejects when the supervisor gives up on it.
   */
  start(): Promise<void> {
    void this.spawn();
    return this.started;
  }

  private enqueue(kind: CallKind, method: string, args: unknown[], deadlineS: number): Promise<unknown> {
    if (this.state === "failed" || this.state === "stopped" || this.state === "stopping") {
      return Promise.reject(this.diedError(`it is ${this.state}; no call is accepted`));
    }
    return new Promise((resolve, reject) => {
      const call = this.queue.push(kind, method, args, deadlineS, { resolve, reject });
      if (kind === "snapshot") this.replay.snapshotQueued();
      if (this.state === "alive" || this.state === "restoring") this.queue.send(call);
    });
  }

  /** Puts a call on the wire; the first one sent to an idle actor starts its deadline. */
  private transmit(call: PendingCall): void {
    this.inc!.send({ t: "call", id: call.id, method: call.method, args: call.args, deadline: call.deadlineS });
    if (this.deadline.watching === undefined) this.watchServing();
  }

  /** Starts the deadline of the call the actor is serving now, if any. */
  private watchServing(): void {
    const call = this.queue.serving;
    if (call) this.deadline.watch(call.id, call.deadlineS);
    else this.deadline.unwatch();
  }

  private deadlinePassed(callId: number): void {
    const call = this.queue.serving;
    if (call?.id === callId) this.inc?.kill("deadline", `${call.method} ran past its ${call.deadlineS}s deadline`);
  }

  /** The call the actor is serving now, and for how long: recorded when it is killed as hung. */
  get callInFlight(): { method: string; running_ms: number; deadline_s: number } | undefined {
    const call = this.queue.serving;
    if (!call) return undefined;
    return { method: call.method, running_ms: Math.round(this.deadline.runningMs()), deadline_s: call.deadlineS };
  }

  private async spawn(): Promise<void> {
    const number = ++this.incarnations;
    const inc = new Incarnation({ ...this.o.incarnation, actor: this.id, role: this.role, rank: this.rank, number });
    this.inc = inc;
    inc.onMessage = (m) => this.receive(inc, m);
    void inc.died.then((cause) => this.onDied(inc, cause));
    const ready = await Promise.race([inc.ready, inc.died.then(() => undefined)]);
    if (!ready || this.inc !== inc) return; // onDied handles it
    if (this.state === "stopping" || this.state === "stopped" || this.state === "failed") {
      // Stopped or given up while this incarnation was starting: it must not come alive.
      inc.kill("stopped", `actor is ${this.state}`);
      return;
    }
    this.info = ready;
    if (number > 1) this.restore();
    else this.state = "alive";
    if (this.state === "alive") this.settleAliveWaiters();
    this.markStarted();
    this.queue.sendUnsent();
    if (number > 1 && this.restoring === 0) this.hooks.restored(this, performance.now() - this.diedAt);
  }

  /** Queues loadState(snapshot) and the replay log ahead of everything else. */
  private restore(): void {
    const calls = this.info.stateful ? this.replay.restoreCalls() : [];
    this.restoring = this.queue.prependRestore(calls, this.o.defaultDeadlineS);
    this.state = this.restoring > 0 ? "restoring" : "alive";
  }

  private receive(inc: Incarnation, m: Message): void {
    if (inc !== this.inc || (m.t !== "result" && m.t !== "error")) return;
    const ranMs = this.deadline.runningMs();
    const call = this.queue.take(m.id);
    if (!call) {
      inc.kill("protocol", `answer for call ${m.id} out of order (expected ${this.queue.serving?.id ?? "none"})`);
      return;
    }
    this.watchServing();
    if (m.t === "result") this.settleResult(call, m.value, ranMs);
    else this.settleError(call, m.name, m.message, m.stack, ranMs);
  }

  private settleResult(call: PendingCall, value: unknown, ranMs: number): void {
    switch (call.kind) {
      case "restore":
        if (--this.restoring === 0) this.finishRestore();
        return;
      case "snapshot":
        this.replay.snapshotTaken(value, ranMs);
        call.resolve(value);
        return;
      case "load":
        this.replay.snapshotLoaded(call.args[0]);
        call.resolve(value);
        return;
      case "user":
        // A completed call means the actor made progress: it is not in a crash loop.
        this.consecutiveRestarts = 0;
        this.log(call, ranMs);
        call.resolve(value);
    }
  }

  private settleError(call: PendingCall, name: string, message: string, stack: string, ranMs: number): void {
    if (call.kind === "restore") {
      this.inc?.kill("restore", `${call.method} failed while restoring state: ${name}: ${message}`);
      return;
    }
    if (call.kind === "user") this.log(call, ranMs);
    if (call.kind === "snapshot") this.replay.snapshotFailed();
    call.reject(new ActorCallError(this.id, call.method, name, message, stack));
  }

  private finishRestore(): void {
    this.state = "alive";
    this.settleAliveWaiters();
    this.hooks.restored(this, performance.now() - this.diedAt);
  }

  /** Logs a completed user call for replay, if it can have changed the role's state. */
  private log(call: PendingCall, ranMs: number): void {
    if (this.info.stateful && !this.info.readOnly.includes(call.method)) this.replay.record(call.method, call.args, ranMs);
  }

  private onDied(inc: Incarnation, cause: DeathCause): void {
    if (inc !== this.inc) return;
    this.diedAt = performance.now();
    const watched = this.deadline.stop();
    const deadlineCall = cause.kind === "deadline" ? watched : undefined;
    this.lastCause = cause;
    this.lastLines = inc.lastLines();
    this.restoring = 0;
    if (this.state === "failed") return;
    if (this.state === "stopping" || cause.kind === "stopped") {
      this.state = "stopped";
      this.rejectAll(`it was stopped`);
      this.hooks.stopped(this, cause);
      for (const w of this.stopWaiters.splice(0)) w();
      return;
    }
    this.state = "dead";
    // Policy first (it may fail the actor, rejecting everything); a restart happens on a timer,
    // after the lost calls below are sorted into retried and rejected.
    this.hooks.died(this, cause);
    if ((this.state as ActorState) !== "failed") this.settleLostCalls(cause, deadlineCall);
  }

  /** Lost calls: internal ones are rebuilt on restore; user ones are retried or rejected. */
  private settleLostCalls(cause: DeathCause, deadlineCall: number | undefined): void {
    const limit = this.o.maxTaskRetries;
    const { retried, exhausted } = this.queue.sortLost(cause.kind !== "group", limit);
    for (const call of exhausted) {
      call.reject(call.id === deadlineCall
        ? new DeadlineExceededError(this.id, call.method, call.deadlineS, call.attempts)
        : this.diedError(`call ${call.method} was lost and max_task_retries=${limit} allows no further retry`, cause));
    }
    for (const call of retried) this.hooks.retried(this, call.method, call.attempts);
  }

  /**
   * Supervisor decision: start the next incarnation after `delayMs`. `counted` restarts count
   * against max_restarts and the intensity window; group restarts of innocent ranks do not.
   */
  restartAfter(delayMs: number, counted = true): void {
    this.state = "restarting";
    if (counted) {
      this.restarts++;
      this.consecutiveRestarts++;
      this.restartTimes.push(Date.now());
    }
    after(delayMs, () => {
      if (this.state === "restarting") void this.spawn();
    });
  }

  /** Supervisor decision: this actor is done for; every pending call gets `why`. Returns the error given. */
  fail(why: string, error?: Error): Error {
    this.state = "failed";
    this.deadline.stop();
    const err = error ?? this.diedError(why);
    for (const c of this.queue.drain()) c.reject(err);
    this.settleAliveWaiters(err);
    this.markStartFailed(err);
    this.inc?.kill("stopped", why);
    return err;
  }

  /** The error a role's failed constructor reported, if that is how the last incarnation ended. */
  get startFatal() {
    return this.inc?.fatal;
  }

  /** The last lines the latest incarnation printed. */
  get output(): string[] {
    return this.inc?.lastLines() ?? [];
  }

  /** Kills the live incarnation as part of a group restart (one_for_all). */
  killForGroup(offender: string): void {
    if (this.inc?.alive || this.state === "starting" || this.state === "restoring") this.inc?.kill("group", `restarting with ${offender} (one_for_all)`);
  }

  /** Intended stop: shutdown message and SIGTERM, then SIGKILL after the grace period. Never restarted. */
  async stop(graceMs: number): Promise<void> {
    if (this.state === "stopped" || this.state === "failed" || this.state === "stopping") return;
    this.state = "stopping";
    this.markStartFailed(this.diedError("it was stopped before it started"));
    const inc = this.inc;
    // Any incarnation whose process has not ended is stopped politely and waited for,
    // including one that is still starting after a restart.
    if (!inc || inc.ended) {
      this.state = "stopped";
      this.rejectAll("it was stopped");
      return;
    }
    const done = new Promise<void>((r) => this.stopWaiters.push(r));
    inc.markStopping();
    inc.send({ t: "shutdown" });
    inc.signal("SIGTERM");
    inc.signal("SIGCONT"); // a stopped (SIGSTOP) process must run to handle SIGTERM
    const timer = after(graceMs, () => inc.kill("stopped", "did not exit within its grace period"));
    await done;
    timer.cancel();
  }

  private rejectAll(why: string): void {
    for (const c of this.queue.drain()) c.reject(this.diedError(why));
    this.settleAliveWaiters(this.diedError(why));
  }

  private diedError(why: string, cause?: DeathCause, lines?: string[]): ActorDiedError {
    const c = cause ?? this.lastCause ?? { kind: "stopped" as const, detail: "not running", code: null, signal: null };
    const spawnError = c.kind === "spawn" ? this.inc?.spawnError : undefined;
    if (spawnError) return new ActorSpawnError(this.id, this.role, this.incarnations, c, spawnError, why);
    return new ActorDiedError(this.id, this.role, this.incarnations, c, lines ?? this.lastLines, why);
  }
}
