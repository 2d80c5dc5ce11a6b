/**
 * One incarnation of an actor: a child process, its channel, its output, its liveness. It dies
 * exactly once, and `died` resolves with the first cause seen (exit, lost connection, protocol
 * error, missed pings, deadline, failed start) and the exit status, after the process has ended.
 */
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { runtime, type ChildProcess } from "../adapter/index.ts";
import type { Channel } from "../ipc/channel.ts";
import type { ActorListener } from "../ipc/listener.ts";
import type { Message } from "../ipc/messages.ts";
import type { DeathCause } from "./errors.ts";
import type { RoleEntry, SpawnSpec } from "./role.ts";

const HOST_MODULE = fileURLToPath(new URL("../host.ts", import.meta.url));
const TAIL_LINES = 20;
const DISCONNECT_GRACE_MS = 100;

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
  env?: Record<string, string>;
}

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
  readonly child: ChildProcess;
  /** Resolves when the role is constructed and serving; never rejects (watch `died`). */
  readonly ready: Promise<ReadyInfo>;
  readonly died: Promise<DeathCause>;
  fatal: FatalInfo | undefined;
  alive = false;
  private channel: Channel | undefined;
  private cause: Omit<DeathCause, "code" | "signal"> | undefined;
  private readonly tail: string[] = [];
  private lastSeen = Date.now();
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private startTimer: ReturnType<typeof setTimeout> | undefined;
  private disconnectTimer: ReturnType<typeof setTimeout> | undefined;
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
    const spec: SpawnSpec = {
      socket: o.listener.path, actor: o.actor, role: o.role, rank: o.rank, incarnation: o.number, token,
      module: o.entry.module, export: o.entry.export, options: o.options, maxFrameBytes: o.maxFrameBytes,
    };
    this.child = runtime.spawn({
      module: HOST_MODULE,
      env: { ...(process.env as Record<string, string>), ...o.env, REVENANT_ACTOR_SPEC: JSON.stringify(spec) },
    });
    const pumps = Promise.all([this.pump(this.child.stdout, "stdout"), this.pump(this.child.stderr, "stderr")]);
    this.startTimer = setTimeout(() => this.kill("start", `not ready within ${o.startTimeoutMs} ms`), o.startTimeoutMs);
    void connected.then(({ channel }) => this.attach(channel));
    this.died = this.child.exited.then(async (status) => {
      this.exited = true;
      clearTimeout(this.disconnectTimer);
      // Let the pipes deliver the last lines (bounded: a grandchild may hold them open).
      await Promise.race([pumps, new Promise((r) => setTimeout(r, 200))]);
      this.stopTimers();
      this.alive = false;
      o.listener.forget(o.actor, o.number);
      this.channel?.close();
      const cause = this.cause ?? { kind: "exit" as const, detail: "the process exited" };
      return { ...cause, code: status.code, signal: status.signal };
    });
  }

  get pid(): number {
    return this.child.pid;
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
        clearTimeout(timer);
        this.healthWaiters.delete(id);
        resolve(r);
      };
      const timer = setTimeout(() => done(`no health report within ${timeoutMs} ms`), timeoutMs);
      this.healthWaiters.set(id, done);
      void this.died.then(() => done("the actor died during the probe"));
      this.send({ t: "health", id });
    });
  }

  /** Fault injection: ask the actor to put garbage on the wire. */
  garble(): void {
    this.channel?.send({ t: "chaos", action: "garble" });
  }

  /** Kills the process (SIGKILL), recording why, unless it is already dying. */
  kill(kind: DeathCause["kind"], detail: string, signal: NodeJS.Signals = "SIGKILL"): void {
    this.cause ??= { kind, detail };
    this.alive = false;
    this.stopTimers();
    this.child.kill(signal);
  }

  /** Sends a signal without recording a cause (SIGSTOP for chaos; SIGTERM for a polite stop). */
  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
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
        this.disconnectTimer = setTimeout(
          () => this.kill("disconnect", error?.message ?? "the actor closed its connection"), DISCONNECT_GRACE_MS);
      },
    });
  }

  private receive(m: Message): void {
    this.lastSeen = Date.now();
    switch (m.t) {
      case "ready":
        clearTimeout(this.startTimer);
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
    this.pingTimer = setInterval(() => {
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
    }, this.o.pingIntervalMs);
  }

  private stopTimers(): void {
    clearInterval(this.pingTimer);
    clearTimeout(this.startTimer);
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
