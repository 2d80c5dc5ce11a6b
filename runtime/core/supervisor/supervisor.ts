/**
 * The supervisor: starts actors from child specs, watches them, and applies the fault-tolerance
 * policy of DESIGN.md when one dies — restart (with backoff, within max_restarts and the
 * intensity window, one_for_one or one_for_all), retry lost calls (max_task_retries), or fail.
 * A failure it cannot repair is escalated as a structured report, never thrown at the caller's
 * event loop: the coordinator stays up.
 *
 * @example
 * ```ts
 * const sup = new Supervisor({ faultTolerance: config.fault_tolerance, roles });
 * await sup.start([{ id: "critic", role: "critic" }]);
 * const v = await sup.actor("critic").call("values", [tokens]);
 * await sup.shutdown();
 * // Actors connect back over TCP instead of the default Unix socket (port 0: a free port):
 * new Supervisor({ faultTolerance, roles, transport: { kind: "tcp", host: "127.0.0.1", port: 0 } });
 * ```
 */
import type { FaultTolerance } from "../../../config/schema.ts";
import { randomBytes } from "node:crypto";
import { ActorListener, removeStaleSocketDirs } from "../ipc/listener.ts";
import { parseTransport, type ActorAddress, type Transport } from "../ipc/transport.ts";
import { DEFAULT_MAX_FRAME_BYTES } from "../ipc/frame.ts";
import { EventLog } from "../metrics/events.ts";
import { MetricsRegistry } from "../metrics/registry.ts";
import { Actor } from "./actor.ts";
import { backoffMs, restartsInWindow } from "./backoff.ts";
import { RoleStartError, describeCause, type DeathCause } from "./errors.ts";
import type { OutputSink } from "./incarnation.ts";
import { localLauncher, type Launcher } from "./launcher.ts";
import type { RoleEntry } from "../host/role.ts";
import { killMarked } from "./process_mark.ts";
import { parseChildSpecs, type ChildSpec, type ChildSpecInput } from "./spec.ts";

/** Why the supervisor gave up on an actor (OTP's supervisor report). */
export interface FailureReport {
  supervisor: string;
  context: "start_error" | "child_terminated" | "shutdown";
  reason: string;
  offender: string;
  role: string;
  error: Error;
}

export interface HealthResult {
  actor: string;
  role: string;
  healthy: boolean;
  report: Record<string, unknown> | null;
  error?: string;
}

export interface SupervisorOptions {
  faultTolerance: FaultTolerance;
  /** Registered roles by name. */
  roles: Readonly<Record<string, RoleEntry>>;
  name?: string;
  /**
   * The mark of every process this supervisor starts (process_mark.ts); default a random one. A
   * job's supervisor takes one derived from the job folder, so the next driver of the job finds
   * and removes what a killed one left.
   */
  mark?: string;
  /** Told what the first start removed of an earlier supervisor of the same mark. */
  onSweep?(line: string): void;
  metrics?: MetricsRegistry;
  events?: EventLog;
  /** Where actor output goes; default: stderr, each line prefixed `[actor#incarnation]`. */
  output?: OutputSink;
  maxFrameBytes?: number;
  /** Time a new incarnation has to become ready. */
  startTimeoutS?: number;
  /** Replay log length that triggers an automatic snapshot. */
  autoSnapshotCalls?: number;
  /**
   * Extra environment for actor processes, passed as given. The inherited environment loses
   * REVENANT_TOKEN and secret-looking variables first (see env.ts).
   */
  env?: Record<string, string>;
  /** Starts actor processes; default `localLauncher` (a child in its own process group). */
  launcher?: Launcher;
  /**
   * Where actors connect back to (ipc/transport.ts): `{ kind: "unix" }`, the default, a socket in
   * a private folder for actors on this machine; or `{ kind: "tcp", host, port, advertise?, tls? }`
   * with `port: 0` for a free port and `tls: { certPath, keyPath, caPath?, serverName? }`. Every
   * actor of this supervisor is handed the one address. Checked here (TransportError).
   */
  transport?: Transport;
  /** Seconds a new connection has to complete the handshake before it is dropped; default 10. */
  helloTimeoutS?: number;
  /** Told why each refused connection was dropped (no hello in time, a wrong token, ...). */
  onConnectionRejected?(reason: string): void;
}

const defaultOutput: OutputSink = (actor, inc, _stream, line) => process.stderr.write(`[${actor}#${inc}] ${line}\n`);
const live = new Set<Supervisor>();
let exitHookInstalled = false;

/** No child outlives its coordinator: on exit, SIGKILL whatever is still running. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const sup of live) sup.killAllNow();
  });
}

export class Supervisor {
  readonly name: string;
  /** Carried by every process this supervisor starts and all they start (process_mark.ts). */
  readonly mark: string;
  readonly metrics: MetricsRegistry;
  readonly events: EventLog;
  private readonly ft: FaultTolerance;
  private listener: ActorListener | undefined;
  private readonly order: Actor[] = [];
  private readonly groups = new Map<string, Actor[]>();
  private readonly specs = new Map<string, ChildSpec>();
  /** Ranks of elastic groups given up on: no longer members of their group. */
  private readonly dropped = new Set<Actor>();
  private readonly failureListeners = new Set<(r: FailureReport) => void>();
  private shuttingDown = false;
  /** The first unrecoverable failure, if any. */
  failure: FailureReport | undefined;

  constructor(private readonly o: SupervisorOptions) {
    this.name = o.name ?? "revenant";
    this.mark = o.mark ?? randomBytes(8).toString("hex");
    this.ft = o.faultTolerance;
    this.metrics = o.metrics ?? new MetricsRegistry();
    this.events = o.events ?? new EventLog();
    parseTransport(o.transport); // a bad transport fails here, naming the field
  }

  /** Where actors connect back to, once started (the bound port of `port: 0` included). */
  get actorAddress(): ActorAddress | undefined {
    return this.listener?.address;
  }

  /** Validates every spec, then starts the children in order (ranks of one spec together). */
  async start(input: readonly ChildSpecInput[]): Promise<void> {
    const specs = parseChildSpecs(input, this.o.roles);
    if (!this.listener) this.sweepLeftovers();
    this.listener ??= await ActorListener.open({
      owner: this.mark,
      maxFrameBytes: this.o.maxFrameBytes,
      transport: this.o.transport,
      helloTimeoutMs: this.o.helloTimeoutS === undefined ? undefined : this.o.helloTimeoutS * 1000,
      onReject: this.o.onConnectionRejected,
    });
    live.add(this);
    installExitHook();
    for (const spec of specs) {
      if (this.groups.has(spec.id)) throw new Error(`child ${spec.id} is already running`);
      this.specs.set(spec.id, spec);
      const ranks = Array.from({ length: spec.ranks }, (_, rank) => this.makeActor(spec, rank));
      this.groups.set(spec.id, ranks);
      this.order.push(...ranks);
      this.metrics.addRole(spec.role);
      if (spec.elastic) this.metrics.setRanks(spec.role, spec.ranks);
      try {
        await Promise.all(ranks.map((a) => a.start()));
      } catch (e) {
        await this.shutdown();
        throw e;
      }
    }
  }

  private makeActor(spec: ChildSpec, rank: number): Actor {
    const ft = this.ft;
    return new Actor({
      id: spec.ranks === 1 ? spec.id : `${spec.id}/${rank}`,
      role: spec.role,
      rank,
      group: spec.id,
      maxTaskRetries: ft.enable_fault_tolerance ? ft.max_task_retries : 0,
      defaultDeadlineS: ft.call_deadline_s,
      autoSnapshotCalls: this.o.autoSnapshotCalls ?? 1000,
      maxReplayMs: ft.max_replay_s * 1000,
      incarnation: {
        entry: this.o.roles[spec.role]!,
        options: spec.options,
        listener: this.listener!,
        maxFrameBytes: this.o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
        pingIntervalMs: ft.ping_interval_s * 1000,
        pingTimeoutMs: ft.ping_timeout_s * 1000,
        startTimeoutMs: (this.o.startTimeoutS ?? 30) * 1000,
        output: this.o.output ?? defaultOutput,
        launcher: this.o.launcher ?? localLauncher,
        env: this.o.env,
        mark: this.mark,
      },
    }, {
      died: (actor, cause) => this.onDeath(actor, cause),
      restored: (actor, latencyMs) => {
        this.metrics.recordRestart(actor.role, latencyMs);
        this.events.emit({ type: "restart", actor: actor.id, role: actor.role, incarnation: actor.incarnation, pid: actor.current?.pid, latency_ms: Math.round(latencyMs * 100) / 100 });
      },
      stopped: (actor, cause) => {
        this.events.emit({ type: "stopped", actor: actor.id, role: actor.role, incarnation: actor.incarnation, pid: actor.current?.pid, detail: cause.detail, code: cause.code, signal: cause.signal });
      },
      retried: (actor, method, attempt) => {
        this.metrics.recordRetry(actor.role);
        this.events.emit({ type: "retry", actor: actor.id, role: actor.role, method, attempt });
      },
    });
  }

  /** The actor of child `id` at `rank`. */
  actor(id: string, rank = 0): Actor {
    const a = this.groups.get(id)?.[rank];
    if (!a) throw new Error(`no actor ${id} rank ${rank}; children: ${[...this.groups.keys()].join(", ") || "(none)"}`);
    return a;
  }

  /** All ranks of child `id`, dropped ones included (a rank keeps its index). */
  group(id: string): readonly Actor[] {
    return this.groups.get(id) ?? [];
  }

  /** The ranks of child `id` still in the group: all of them unless the group is elastic and lost some. */
  live(id: string): readonly Actor[] {
    return this.group(id).filter((a) => !this.dropped.has(a));
  }

  /** Whether `actor` was dropped from its elastic group. */
  isDropped(actor: Actor): boolean {
    return this.dropped.has(actor);
  }

  /** Every actor still in the job (dropped ranks of elastic groups left out), in start order. */
  actors(): readonly Actor[] {
    return this.dropped.size ? this.order.filter((a) => !this.dropped.has(a)) : this.order;
  }

  /** Subscribes to unrecoverable failures. */
  onFailure(listener: (r: FailureReport) => void): () => void {
    this.failureListeners.add(listener);
    return () => this.failureListeners.delete(listener);
  }

  /** The policy. Called once for every death of every incarnation. */
  private onDeath(actor: Actor, cause: DeathCause): void {
    const intended = cause.kind === "group";
    if (!intended) this.metrics.recordFailure(actor.role);
    this.events.emit({
      type: "death", actor: actor.id, role: actor.role, incarnation: actor.incarnation, pid: actor.current?.pid, cause: cause.kind,
      detail: cause.detail, code: cause.code, signal: cause.signal,
      // A hung actor's last lines, process state and the call it was serving, read before the kill.
      ...(cause.forensics && { forensics: { ...cause.forensics, call: actor.callInFlight } }),
    });
    if (this.shuttingDown) {
      actor.fail("the supervisor is shutting down");
      return;
    }
    const spec = this.specs.get(actor.group)!;
    const fatal = actor.startFatal;
    if (fatal) {
      const err = new RoleStartError(actor.id, actor.role, fatal.name, fatal.message, fatal.stack);
      return this.giveUp(actor, "start_error", err.message, err);
    }
    if (!this.ft.enable_fault_tolerance) {
      return this.giveUp(actor, "child_terminated", `fault tolerance is disabled (enable_fault_tolerance: false); ${describeCause(cause)}`);
    }
    if (spec.restart === "temporary") return this.giveUp(actor, "child_terminated", "restart type temporary: never restarted");
    if (spec.restart === "transient" && cause.kind === "exit" && cause.code === 0) {
      actor.fail("it exited normally (restart type transient)");
      this.events.emit({ type: "stopped", actor: actor.id, role: actor.role, reason: "normal exit" });
      return;
    }
    if (!intended) {
      const max = this.ft.max_restarts;
      if (max !== -1 && actor.restarts >= max) {
        return this.giveUp(actor, "child_terminated", `max_restarts=${max} reached (${actor.restarts} restarts); last death: ${describeCause(cause)}`);
      }
      const recent = restartsInWindow(actor.restartTimes, this.ft.restart_period_s);
      if (recent >= this.ft.restart_intensity) {
        return this.giveUp(actor, "child_terminated",
          `crash loop: ${recent} restarts within ${this.ft.restart_period_s}s exceeds restart_intensity=${this.ft.restart_intensity}; last death: ${describeCause(cause)}`);
      }
    }
    if (this.ft.restart_strategy === "one_for_all" && !intended) {
      for (const sibling of this.group(actor.group)) if (sibling !== actor) sibling.killForGroup(actor.id);
    }
    // Backoff grows with restarts that made no progress (no call completed in between), so a
    // crash loop slows down while an actor killed now and then always comes back quickly.
    const delay = backoffMs(actor.consecutiveRestarts + 1, this.ft.restart_backoff_initial_s, this.ft.restart_backoff_max_s);
    actor.restartAfter(intended ? 0 : delay, !intended);
  }

  private giveUp(actor: Actor, context: FailureReport["context"], reason: string, error?: Error): void {
    if (context === "child_terminated" && this.dropFromGroup(actor, reason)) return;
    // The actor's own error: an ActorDiedError with its real last cause (ActorSpawnError if it
    // could not be started), the one its callers get.
    const report: FailureReport = { supervisor: this.name, context, reason, offender: actor.id, role: actor.role, error: actor.fail(reason, error) };
    this.events.emit({ type: "failed", actor: actor.id, role: actor.role, context, reason });
    this.failure ??= report;
    for (const l of this.failureListeners) l(report);
  }

  /**
   * An elastic group loses `actor` instead of failing the job, while it has another rank: the
   * actor's pending calls get its error (callers route them to the ranks left), a `dropped`
   * event says so, and `actor_ranks/<role>` counts the ranks left.
   */
  private dropFromGroup(actor: Actor, reason: string): boolean {
    const spec = this.specs.get(actor.group);
    const left = this.live(actor.group).filter((a) => a !== actor);
    if (!spec?.elastic || left.length === 0) return false;
    this.dropped.add(actor);
    actor.fail(reason);
    this.metrics.setRanks(actor.role, left.length);
    this.events.emit({ type: "dropped", actor: actor.id, role: actor.role, reason, ranks_left: left.length });
    return true;
  }

  /** Resolves once every actor serves calls (no restart in progress); rejects if one has failed. */
  async settled(): Promise<void> {
    await Promise.all(this.actors().map((a) => a.whenAlive()));
  }

  /** Snapshots every stateful actor (in call order for each); returns states by actor id. */
  async snapshotAll(): Promise<Map<string, unknown>> {
    const states = await Promise.all(this.actors().map(async (a) => [a.id, await a.takeSnapshot()] as const));
    return new Map(states);
  }

  /**
   * One health-probe round: every actor answers `health()` within health_check_timeout_s, out
   * of band (a long call does not delay it). Sets `actor_health/<role>`: 1 if all ranks passed.
   */
  async probeHealth(): Promise<HealthResult[]> {
    const results = await this.healthReports();
    const byRole = new Map<string, boolean>();
    for (const r of results) byRole.set(r.role, (byRole.get(r.role) ?? true) && r.healthy);
    for (const [role, healthy] of byRole) {
      const before = this.metrics.healthOf(role);
      this.metrics.setHealth(role, healthy);
      if (before !== (healthy ? 1 : 0)) this.events.emit({ type: "health", actor: role, role, healthy });
    }
    return results;
  }

  /** Every actor's `health()` report, out of band, within health_check_timeout_s; no metric or event is touched. */
  healthReports(): Promise<HealthResult[]> {
    const timeoutMs = this.ft.health_check_timeout_s * 1000;
    return Promise.all(this.actors().map((a) => this.probe(a, timeoutMs)));
  }

  private async probe(actor: Actor, timeoutMs: number): Promise<HealthResult> {
    const base = { actor: actor.id, role: actor.role };
    const inc = actor.current;
    if (!inc || actor.state !== "alive") return { ...base, healthy: false, report: null, error: `actor is ${actor.state}` };
    const report = await inc.health(timeoutMs);
    if (typeof report === "string") return { ...base, healthy: false, report: null, error: report };
    return { ...base, healthy: report.ok !== false, report };
  }

  /** Stops every actor in reverse start order (SIGTERM, grace, SIGKILL); nothing is restarted. */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    for (const actor of [...this.order].reverse()) {
      const grace = this.specs.get(actor.group)?.shutdown_grace_s ?? this.ft.shutdown_grace_s;
      await actor.stop(grace * 1000);
    }
    this.listener?.close();
    this.listener = undefined;
    live.delete(this);
    // What the actors started and left behind (a reward module's detached helper, say) ends with them.
    killMarked({ supervisor: this.mark });
  }

  /** Synchronous last resort (process exit): SIGKILL every live actor process, through its launcher, and all they started. */
  killAllNow(): void {
    for (const a of this.order) a.current?.signal("SIGKILL");
    killMarked({ supervisor: this.mark });
  }

  /**
   * Before the first start: processes and socket folders of an earlier supervisor of the same mark
   * (a coordinator SIGKILLed while driving this job) are removed; the caller's lock on the job
   * says that supervisor is gone.
   */
  private sweepLeftovers(): void {
    const killed = killMarked({ supervisor: this.mark });
    const removed = removeStaleSocketDirs(this.mark);
    if (killed.length || removed.length) {
      this.o.onSweep?.(`removed what an earlier coordinator of ${this.name} left: ${killed.length} process(es)${killed.length ? ` (pid ${killed.join(", ")})` : ""}, ${removed.length} socket folder(s)`);
    }
  }
}
