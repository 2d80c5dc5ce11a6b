/**
 * A supervised actor: one role at one rank, across all its incarnations. It owns the call queue
 * (submission order, pipelined to the process), the deadline of the call being served, the
 * latest state snapshot and the replay log of calls since it. Policy (restart or fail) belongs
 * to the Supervisor; the actor reports each death and does what it is told.
 */
import type { Message } from "../ipc/messages.ts";
import { after, type Timer } from "../timers.ts";
import { ActorCallError, ActorDiedError, ActorSpawnError, DeadlineExceededError, type DeathCause } from "./errors.ts";
import { Incarnation, type IncarnationOptions, type ReadyInfo } from "./incarnation.ts";

export type ActorState = "starting" | "alive" | "restoring" | "dead" | "restarting" | "failed" | "stopping" | "stopped";

export interface CallOptions {
  /** Seconds this call may run once the actor starts on it; past that the actor is killed as hung. */
  deadline?: number;
}

type Kind = "user" | "snapshot" | "load" | "restore";
interface PendingCall {
  id: number;
  kind: Kind;
  method: string;
  args: unknown[];
  deadlineS: number;
  /** Times this call was lost to a death. */
  attempts: number;
  sent: boolean;
  resolve(value: unknown): void;
  reject(error: Error): void;
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
  private queue: PendingCall[] = [];
  private nextId = 1;
  private info: ReadyInfo = { methods: [], readOnly: [], stateful: false };
  private snapshot: { state: unknown } | undefined;
  private replay: { method: string; args: unknown[] }[] = [];
  private deadlineTimer: Timer | undefined;
  private deadlineCall: number | undefined;
  private headSince = 0;
  private deadlineAt = 0;
  private timerAt = 0;
  private replayCostMs = 0;
  private snapshotCostMs = 0;
  private snapshotPending = false;
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
    return this.snapshot?.state;
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

  private enqueue(kind: Kind, method: string, args: unknown[], deadlineS: number): Promise<unknown> {
    if (this.state === "failed" || this.state === "stopped" || this.state === "stopping") {
      return Promise.reject(this.diedError(`it is ${this.state}; no call is accepted`));
    }
    return new Promise((resolve, reject) => {
      const call: PendingCall = { id: this.nextId++, kind, method, args, deadlineS, attempts: 0, sent: false, resolve, reject };
      this.queue.push(call);
      if (this.state === "alive" || this.state === "restoring") this.send(call);
    });
  }

  private send(call: PendingCall): void {
    call.sent = true;
    this.inc!.send({ t: "call", id: call.id, method: call.method, args: call.args, deadline: call.deadlineS });
    if (this.deadlineCall === undefined) this.armDeadline();
  }

  /**
   * Starts the deadline of the call the actor is serving now: the first one sent. One timer is
   * kept and re-aimed lazily (not cleared and set per call): small calls stay cheap.
   */
  private armDeadline(): void {
    this.deadlineCall = undefined;
    const head = this.queue[0];
    if (!head || !head.sent) return;
    this.deadlineCall = head.id;
    this.headSince = performance.now();
    this.deadlineAt = this.headSince + head.deadlineS * 1000;
    if (this.deadlineTimer === undefined || this.deadlineAt < this.timerAt) this.aimTimer(this.deadlineAt);
  }

  private aimTimer(at: number): void {
    this.deadlineTimer?.cancel();
    this.timerAt = at;
    this.deadlineTimer = after(at - performance.now(), () => this.checkDeadline());
  }

  private checkDeadline(): void {
    this.deadlineTimer = undefined;
    const head = this.queue[0];
    if (this.deadlineCall === undefined || !head || head.id !== this.deadlineCall) return;
    if (performance.now() >= this.deadlineAt) {
      this.inc?.kill("deadline", `${head.method} ran past its ${head.deadlineS}s deadline`);
    } else {
      this.aimTimer(this.deadlineAt);
    }
  }

  private stopDeadline(): void {
    this.deadlineTimer?.cancel();
    this.deadlineTimer = undefined;
  }

  /** The call the actor is serving now, and for how long: recorded when it is killed as hung. */
  get callInFlight(): { method: string; running_ms: number; deadline_s: number } | undefined {
    const head = this.queue[0];
    if (!head?.sent) return undefined;
    return { method: head.method, running_ms: Math.round(performance.now() - this.headSince), deadline_s: head.deadlineS };
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
    for (const call of this.queue) if (!call.sent) this.send(call);
    if (number > 1 && this.restoring === 0) this.hooks.restored(this, performance.now() - this.diedAt);
  }

  /** Queues loadState(snapshot) and the replay log ahead of everything else. */
  private restore(): void {
    const internal: PendingCall[] = [];
    const add = (method: string, args: unknown[]) =>
      internal.push({ id: this.nextId++, kind: "restore", method, args, deadlineS: this.o.defaultDeadlineS, attempts: 0, sent: false, resolve: () => {}, reject: () => {} });
    if (this.info.stateful) {
      if (this.snapshot) add("__loadState", [this.snapshot.state]);
      for (const r of this.replay) add(r.method, r.args);
    }
    this.restoring = internal.length;
    this.state = internal.length > 0 ? "restoring" : "alive";
    this.queue = [...internal, ...this.queue];
  }

  private receive(inc: Incarnation, m: Message): void {
    if (inc !== this.inc || (m.t !== "result" && m.t !== "error")) return;
    const head = this.queue[0];
    if (!head || !head.sent || head.id !== m.id) {
      inc.kill("protocol", `answer for call ${m.id} out of order (expected ${head?.id ?? "none"})`);
      return;
    }
    this.queue.shift();
    const ranMs = performance.now() - this.headSince;
    this.armDeadline();
    if (m.t === "result") this.settleResult(head, m.value, ranMs);
    else this.settleError(head, m.name, m.message, m.stack, ranMs);
  }

  private settleResult(call: PendingCall, value: unknown, ranMs: number): void {
    switch (call.kind) {
      case "restore":
        if (--this.restoring === 0) this.finishRestore();
        return;
      case "snapshot":
        this.snapshot = { state: value };
        this.clearReplay();
        this.snapshotCostMs = ranMs;
        call.resolve(value);
        return;
      case "load":
        // The snapshot is set here, in order, so a call after it is logged against it.
        this.snapshot = { state: call.args[0] };
        this.clearReplay();
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
    call.reject(new ActorCallError(this.id, call.method, name, message, stack));
  }

  private finishRestore(): void {
    this.state = "alive";
    this.settleAliveWaiters();
    this.hooks.restored(this, performance.now() - this.diedAt);
  }

  /**
   * Records a completed call for replay. When replaying the log would take longer than the
   * recovery budget (max_replay_s, or twice what a snapshot costs), or the log grows long, a
   * snapshot is taken in call order, so recovery time and memory stay bounded.
   */
  private log(call: PendingCall, ranMs: number): void {
    if (!this.info.stateful || this.info.readOnly.includes(call.method)) return;
    this.replay.push({ method: call.method, args: call.args });
    this.replayCostMs += ranMs;
    const budget = Math.max(this.o.maxReplayMs, 2 * this.snapshotCostMs);
    if (!this.snapshotPending && (this.replayCostMs > budget || this.replay.length >= this.o.autoSnapshotCalls)) {
      this.snapshotPending = true;
      void this.takeSnapshot().catch(() => {}).finally(() => (this.snapshotPending = false));
    }
  }

  private clearReplay(): void {
    this.replay = [];
    this.replayCostMs = 0;
  }

  private onDied(inc: Incarnation, cause: DeathCause): void {
    if (inc !== this.inc) return;
    this.diedAt = performance.now();
    this.stopDeadline();
    const deadlineCall = cause.kind === "deadline" ? this.deadlineCall : undefined;
    this.deadlineCall = undefined;
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
    const keep: PendingCall[] = [];
    for (const call of this.queue) {
      if (call.kind === "restore") continue;
      if (call.sent) {
        call.sent = false;
        if (cause.kind !== "group") call.attempts++;
        const limit = this.o.maxTaskRetries;
        if (call.kind === "user" && limit !== -1 && call.attempts > limit) {
          call.reject(call.id === deadlineCall
            ? new DeadlineExceededError(this.id, call.method, call.deadlineS, call.attempts)
            : this.diedError(`call ${call.method} was lost and max_task_retries=${limit} allows no further retry`, cause));
          continue;
        }
        if (call.kind === "user") this.hooks.retried(this, call.method, call.attempts);
      }
      keep.push(call);
    }
    this.queue = keep;
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
    this.stopDeadline();
    const calls = this.queue;
    this.queue = [];
    const err = error ?? this.diedError(why);
    for (const c of calls) c.reject(err);
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
    const calls = this.queue;
    this.queue = [];
    for (const c of calls) c.reject(this.diedError(why));
    this.settleAliveWaiters(this.diedError(why));
  }

  private diedError(why: string, cause?: DeathCause, lines?: string[]): ActorDiedError {
    const c = cause ?? this.lastCause ?? { kind: "stopped" as const, detail: "not running", code: null, signal: null };
    const spawnError = c.kind === "spawn" ? this.inc?.spawnError : undefined;
    if (spawnError) return new ActorSpawnError(this.id, this.role, this.incarnations, c, spawnError, why);
    return new ActorDiedError(this.id, this.role, this.incarnations, c, lines ?? this.lastLines, why);
  }
}
