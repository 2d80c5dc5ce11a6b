/**
 * The event log: every death (with its cause), restart (with its latency), retry, failure and
 * health change, and where a launcher placed each incarnation (`placed`, with its node), as JSON
 * lines in `events.jsonl` when a path is given, and to subscribers.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { appendLine, WriteError, writing } from "../../../native/files.ts";
import { repairJsonLines } from "./jsonl.ts";

export interface RuntimeEvent {
  /** Milliseconds since the epoch. */
  ts: number;
  type: "death" | "restart" | "retry" | "failed" | "health" | "stopped" | "placed" | "dropped";
  actor: string;
  role: string;
  /** `placed`: the node (host name) a launcher started the incarnation on (Slurm, Kubernetes). */
  node?: string;
  [field: string]: unknown;
}

export class EventLog {
  readonly events: RuntimeEvent[] = [];
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();
  private readonly writeErrorListeners = new Set<(e: WriteError) => void>();
  /** The first append that failed; later events stay in memory only. */
  writeError: WriteError | undefined;

  /** `path`: the JSONL file to append to (its folder is created), or undefined for memory only. */
  constructor(private readonly path?: string) {
    if (!path) return;
    writing(path, () => mkdirSync(dirname(path), { recursive: true }));
    repairJsonLines(path); // a coordinator killed mid-append left a torn line: resume appends after it
  }

  emit(event: Omit<RuntimeEvent, "ts">): void {
    const e = { ts: Date.now(), ...event } as RuntimeEvent;
    this.events.push(e);
    this.persist(e);
    for (const l of this.listeners) l(e);
  }

  /**
   * Synchronous append: an event must be on disk even if the coordinator dies right after.
   * Events are emitted from supervision callbacks, where a throw would be lost; a failed write
   * is kept and reported to `onWriteError` listeners (the trainer fails the job with it).
   */
  private persist(e: RuntimeEvent): void {
    if (!this.path || this.writeError) return;
    try {
      appendLine(this.path, JSON.stringify(e));
    } catch (err) {
      this.writeError = err as WriteError;
      for (const l of this.writeErrorListeners) l(this.writeError);
    }
  }

  /** Called once, with the first failed append. */
  onWriteError(listener: (e: WriteError) => void): () => void {
    this.writeErrorListeners.add(listener);
    return () => this.writeErrorListeners.delete(listener);
  }

  subscribe(listener: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  count(type: RuntimeEvent["type"], role?: string): number {
    return this.events.filter((e) => e.type === type && (role === undefined || e.role === role)).length;
  }
}
