/**
 * The event log: every death (with its cause), restart (with its latency), retry, failure and
 * health change, as JSON lines in `events.jsonl` when a path is given, and to subscribers.
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";

export interface RuntimeEvent {
  /** Milliseconds since the epoch. */
  ts: number;
  type: "death" | "restart" | "retry" | "failed" | "health" | "stopped";
  actor: string;
  role: string;
  [field: string]: unknown;
}

export class EventLog {
  readonly events: RuntimeEvent[] = [];
  private readonly listeners = new Set<(e: RuntimeEvent) => void>();

  /** `path`: the JSONL file to append to (its folder is created), or undefined for memory only. */
  constructor(private readonly path?: string) {
    if (path) mkdirSync(dirname(path), { recursive: true });
  }

  emit(event: Omit<RuntimeEvent, "ts">): void {
    const e = { ts: Date.now(), ...event } as RuntimeEvent;
    this.events.push(e);
    // Synchronous append: an event must be on disk even if the coordinator dies right after.
    if (this.path) appendFileSync(this.path, JSON.stringify(e) + "\n");
    for (const l of this.listeners) l(e);
  }

  subscribe(listener: (e: RuntimeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  count(type: RuntimeEvent["type"], role?: string): number {
    return this.events.filter((e) => e.type === type && (role === undefined || e.role === role)).length;
  }
}
