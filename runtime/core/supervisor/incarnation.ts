/**
 * One incarnation of an actor: a process started by a launcher, its channel, its output, its
 * liveness. It dies exactly once, and `died` resolves with the first cause seen (exit, lost
 * connection, protocol error, missed pings, deadline, failed start, failed spawn) and the exit
 * status, after the process has ended. A launch that throws is a death too, at once: it never
 * escapes as an exception, so a restart cannot be left half done.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import type { Channel } from "../ipc/channel.ts";
import type { ActorListener } from "../ipc/listener.ts";
import type { Message } from "../ipc/messages.ts";
import { after, every, type Timer } from "../timers.ts";
import { actorEnv } from "./env.ts";
import { describeSpawnError, type DeathCause } from "./errors.ts";
import type { ActorProcess, Launcher } from "./launcher.ts";
import { incarnationMark, killMarked, PROCESS_MARK } from "./process_mark.ts";
import type { RoleEntry, SpawnSpec } from "../host/role.ts";

const HOST_MODULE = fileURLToPath(new URL("../host/host.ts", import.meta.url));
const TAIL_LINES = 20;
const DISCONNECT_GRACE_MS = 100;
/** What a corrupting actor might write: the first four bytes are not the frame magic. */
const NOT_A_FRAME = new TextEncoder().encode("garbage, not a Revenant frame");

export type OutputSink = (actor: string, incarnation: number, stream: "stdout" | "stderr" | "log", line: string) => void;

export interface IncarnationOptions {
  actor: string;
  role: string;
  rank: number;
  number: number;
  entry: RoleEntry;
  options: Record<string, unknown>;
  listener: ActorListener;
  maxFrameBytes: number;
  pingIntervalMs: number;
  pingTimeoutMs: number;
  startTimeoutMs: number;
  output: OutputSink;
  /** Starts the process (local spawn by default; see launcher.ts). */
  launcher: Launcher;
  /** Extra environment, passed explicitly (the inherited one loses its secrets, see env.ts). */
  env?: Record<string, string>;
  /** The supervisor's process mark: this incarnation's processes carry it (process_mark.ts). */
  mark?: string;
}

type Cause = Omit<DeathCause, "code" | "signal">;

export interface ReadyInfo {
  methods: string[];
  readOnly: string[];
  stateful: boolean;
}

/** What a role's failed start reported. */
export interface FatalInfo {
  name: string;
  message: string;
  stack: string;
}

export class Incarnation {
  readonly number: number;
  /** Resolves when the role is constructed and serving; never rejects (watch `died`). */
  readonly ready: Promise<ReadyInfo>;
  readonly died: Promise<DeathCause>;
  fatal: FatalInfo | undefined;
  /** The launcher's error, when the process could not be started. */
  spawnError: Error | undefined;
  alive = false;
  private readonly proc: ActorProcess | undefined;
  private channel: Channel | undefined;
  private cause: Cause | undefined;
  /** The launcher's view of the process, taken just before it was killed as hung. */
  private inspected: Record<string, unknown> | undefined;
  private readonly tail: string[] = [];
  private lastSeen = Date.now();
  private pingTimer: Timer | undefined;
  private startTimer: Timer | undefined;
  private disconnectTimer: Timer | undefined;
  private exited = false;
  private pingId = 0;
  private healthId = 0;
  private readonly healthWaiters = new Map<number, (report: Record<string, unknown> | string) => void>();
  private resolveReady!: (r: ReadyInfo) => void;
  onMessage: (m: Message) => void = () => {};

  constructor(private readonly o: IncarnationOptions) {
    this.number = o.number;
    this.ready = new Promise((r) => (this.resolveReady = r));
    const token = randomBytes(16).toString("hex");
    const connected = o.listener.expect(o.actor, o.number, token);
    this.proc = this.launch(token);
    if (!this.proc) {
      o.listener.forget(o.actor, o.number);
      this.exited = true;
      this.died = Promise.resolve({ ...this.cause!, code: null, signal: null });
      return;
    }
    this.died = this.watch(this.proc);
    void connected.then(({ channel }) => this.attach(channel));
  }

  /** Asks the launcher for the process; if it throws, that is the cause of this death. */
  private launch(token: string): ActorProcess | undefined {
    const o = this.o;
    try {
      const spec: SpawnSpec = {
        address: o.listener.address, helloTimeoutMs: o.listener.helloTimeoutMs, actor: o.actor, role: o.role, rank: o.rank, incarnation: o.number, token,
        module: o.entry.module, export: o.entry.export, options: o.options, maxFrameBytes: o.maxFrameBytes,
      };
      const env = actorEnv(process.env, o.env, { REVENANT_ACTOR_SPEC: JSON.stringify(spec), ...this.markEnv() });
      return o.launcher.launch({ actor: o.actor, role: o.role, rank: o.rank, incarnation: o.number, module: HOST_MODULE, env });
    } catch (e) {
      this.spawnError = e instanceof Error ? e : new Error(String(e));
      this.cause = { kind: "spawn", detail: `the ${o.launcher.name} launcher could not start the process: ${describeSpawnError(e)}` };
      return undefined;
    }
  }

  private markEnv(): Record<string, string> {
    const o = this.o;
    return o.mark ? { [PROCESS_MARK]: incarnationMark(o.mark, o.actor, o.number) } : {};
  }

  /** Follows a started process to its end; resolves with the cause of death and exit status. */
  private watch(proc: ActorProcess): Promise<DeathCause> {
    const o = this.o;
    const pumps = Promise.all([this.pump(proc.stdout, "stdout"), this.pump(proc.stderr, "stderr")]);
    this.startTimer = after(o.startTimeoutMs, () => this.kill("start", `not ready within ${o.startTimeoutMs} ms`));
    return proc.exited.then(async (status) => {
      this.exited = true;
      this.disconnectTimer?.cancel();
      // Whatever the actor started outlives it otherwise: orphans are not killed with their parent.
      if (o.mark) killMarked({ exact: incarnationMark(o.mark, o.actor, o.number) });
      // Let the pipes deliver the last lines (bounded: a grandchild may hold them open).
      await Promise.race([pumps, new Promise((r) => setTimeout(r, 200))]);
      this.stopTimers();
      this.alive = false;
      o.listener.forget(o.actor, o.number);
      this.channel?.close();
      return { ...this.finalCause(), code: status.code, signal: status.signal };
    });
  }

  /** The recorded cause; for a hung actor, with the forensics taken before the kill. */
  private finalCause(): Cause {
    const cause = this.cause ?? { kind: "exit" as const, detail: "the process exited" };
    if (!this.inspected) return cause;
    // The last lines are read now, after the pipes drained: what it printed just before hanging.
    return { ...cause, forensics: { last_lines: this.lastLines(), process: this.inspected } };
  }

  /** The process id, when the launcher's process has one and it was started. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The process has ended (its exit status is known). */
  get ended(): boolean {
    return this.exited;
  }

  /** The last lines this incarnation printed. */
  lastLines(): string[] {
    return [...this.tail];
  }

  send(m: Message): void {
    this.channel?.send(m);
  }

  /**
   * Asks the actor for its health report, answered out of band (a running call does not delay
   * it). Resolves with the report, or with a string saying why there is none.
   */
  health(timeoutMs: number): Promise<Record<string, unknown> | string> {
    const id = ++this.healthId;
    return new Promise((resolve) => {
      const done = (r: Record<string, unknown> | string) => {
        timer.cancel();
        this.healthWaiters.delete(id);
        resolve(r);
      };
      const timer = after(timeoutMs, () => done(`no health report within ${timeoutMs} ms`));
      this.healthWaiters.set(id, done);
      void this.died.then(() => done("the actor died during the probe"));
      this.send({ t: "health", id });
    });
  }

  /**
   * Fault injection, on this side of the channel: bytes that are not a frame are read as if the
   * actor had written them. The protocol error kills this incarnation like a real corrupt frame
   * (cause `protocol`); the actor's process and the wire protocol take no part in it.
   */
  corrupt(): void {
    this.channel?.inject(NOT_A_FRAME);
  }

  /**
   * Kills the process (SIGKILL), recording why, unless it is already dying. An actor killed as
   * hung is inspected first: afterwards there is nothing left to look at.
   */
  kill(kind: DeathCause["kind"], detail: string, signal: NodeJS.Signals = "SIGKILL"): void {
    if (!this.cause && (kind === "hang" || kind === "deadline")) this.inspect();
    this.cause ??= { kind, detail };
    this.alive = false;
    this.stopTimers();
    this.proc?.kill(signal);
  }

  /** Sends a signal without recording a cause (SIGSTOP for chaos; SIGTERM for a polite stop). */
  signal(signal: NodeJS.Signals): void {
    this.proc?.kill(signal);
  }

  /** Records the launcher's view of the live process, for the forensics of its death. */
  private inspect(): void {
    if (!this.proc || this.exited) return;
    try {
      this.inspected = this.o.launcher.inspect?.(this.proc) ?? {};
    } catch (e) {
      this.inspected = { unavailable: `the ${this.o.launcher.name} launcher could not inspect it: ${(e as Error).message}` };
    }
  }

  /** Marks the death as intended before stopping the process. */
  markStopping(): void {
    this.cause ??= { kind: "stopped", detail: "stopped on request" };
  }

  private attach(channel: Channel): void {
    this.channel = channel;
    channel.listen({
      message: (m) => this.receive(m),
      close: (error) => {
        if (this.cause || this.exited) return;
        this.alive = false;
        if (error?.name === "ProtocolError") return this.kill("protocol", error.message);
        // A lost connection usually means the process is dying: give its exit status a moment
        // to arrive, so the recorded cause is the real one (a signal, an exit code).
        this.disconnectTimer = after(DISCONNECT_GRACE_MS,
          () => this.kill("disconnect", error?.message ?? "the actor closed its connection"));
      },
    });
  }

  private receive(m: Message): void {
    this.lastSeen = Date.now();
    switch (m.t) {
      case "ready":
        this.startTimer?.cancel();
        this.alive = true;
        this.startPings();
        this.resolveReady({ methods: m.methods, readOnly: m.readOnly, stateful: m.stateful });
        return;
      case "fatal":
        this.fatal = { name: m.name, message: m.message, stack: m.stack };
        this.cause ??= { kind: "start", detail: `role constructor threw ${m.name}: ${m.message}` };
        return;
      case "pong":
        return;
      case "healthy":
        this.healthWaiters.get(m.id)?.(m.report);
        return;
      case "log":
        this.remember(m.line);
        this.o.output(this.o.actor, this.number, "log", m.line);
        return;
      default:
        this.onMessage(m);
    }
  }

  private startPings(): void {
    let lastTick = Date.now();
    this.pingTimer = every(this.o.pingIntervalMs, () => {
      const now = Date.now();
      // If this timer itself ran late, the coordinator's event loop was blocked: answers may be
      // waiting unread. Do not blame the actor for our own stall.
      if (now - lastTick > 2 * this.o.pingIntervalMs) this.lastSeen = Math.max(this.lastSeen, now - this.o.pingIntervalMs);
      lastTick = now;
      if (now - this.lastSeen > this.o.pingTimeoutMs) {
        this.kill("hang", `no answer to pings for ${this.o.pingTimeoutMs} ms`);
        return;
      }
      this.channel?.send({ t: "ping", id: ++this.pingId });
    });
  }

  private stopTimers(): void {
    this.pingTimer?.cancel();
    this.startTimer?.cancel();
  }

  private remember(line: string): void {
    this.tail.push(line);
    if (this.tail.length > TAIL_LINES) this.tail.shift();
  }

  private async pump(stream: ReadableStream<Uint8Array>, name: "stdout" | "stderr"): Promise<void> {
    const decoder = new TextDecoder();
    let partial = "";
    try {
      for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
        const lines = (partial + decoder.decode(chunk, { stream: true })).split("\n");
        partial = lines.pop()!;
        for (const line of lines) {
          this.remember(line);
          this.o.output(this.o.actor, this.number, name, line);
        }
      }
    } catch {
      // the pipe closed with the process
    }
    if (partial) {
      this.remember(partial);
      this.o.output(this.o.actor, this.number, name, partial);
    }
  }
}
