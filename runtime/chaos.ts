/**
 * Fault injection, for tests and for users who want to see recovery happen: kill an actor
 * (SIGKILL), hang it (SIGSTOP: it stops answering pings and is killed as hung), or corrupt its
 * channel (it writes bytes that are not a frame). The ChaosMonkey does these at random,
 * seeded intervals and keeps a ledger of what it did.
 *
 * @example
 * ```ts
 * const monkey = new ChaosMonkey(supervisor, { seed: 7, meanIntervalS: 0.5 });
 * monkey.start();  // ... run the job ...
 * monkey.stop();
 * console.log(monkey.ledger);
 * ```
 */
import type { Actor } from "./supervisor/actor.ts";
import type { Supervisor } from "./supervisor/supervisor.ts";
import { Rng } from "./rng.ts";

export type ChaosAction = "kill" | "hang" | "corrupt";
export const CHAOS_ACTIONS: readonly ChaosAction[] = ["kill", "hang", "corrupt"];

/** SIGKILLs the actor's current process. Returns false if it has none running. */
export function killActor(actor: Actor): boolean {
  return signalActor(actor, "SIGKILL");
}

/** SIGSTOPs the actor's current process: from outside it looks hung. */
export function hangActor(actor: Actor): boolean {
  return signalActor(actor, "SIGSTOP");
}

/** Makes the actor write garbage on its channel: a protocol error, handled as a failure. */
export function corruptActor(actor: Actor): boolean {
  const inc = actor.current;
  if (!inc?.alive) return false;
  inc.garble();
  return true;
}

function signalActor(actor: Actor, signal: NodeJS.Signals): boolean {
  const inc = actor.current;
  if (!inc?.alive) return false;
  inc.signal(signal);
  return true;
}

export function injectFault(actor: Actor, action: ChaosAction): boolean {
  switch (action) {
    case "kill": return killActor(actor);
    case "hang": return hangActor(actor);
    case "corrupt": return corruptActor(actor);
  }
}

export interface ChaosOptions {
  seed: number;
  /** Mean seconds between faults (exponentially distributed). */
  meanIntervalS: number;
  actions?: readonly ChaosAction[];
  /** Only these actors (ids); default all. */
  targets?: readonly string[];
  /** At most this many faults in all. */
  maxFaults?: number;
}

export interface ChaosRecord {
  at: number;
  actor: string;
  role: string;
  action: ChaosAction;
  incarnation: number;
}

export class ChaosMonkey {
  readonly ledger: ChaosRecord[] = [];
  private readonly rng: Rng;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running = false;
  /** Incarnations already struck: one fault each, so injected faults and failures match. */
  private readonly struck = new Set<string>();

  constructor(private readonly supervisor: Supervisor, private readonly o: ChaosOptions) {
    this.rng = new Rng(o.seed);
  }

  start(): void {
    this.running = true;
    this.schedule();
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
  }

  /** Faults injected, per action. */
  count(action?: ChaosAction): number {
    return this.ledger.filter((r) => action === undefined || r.action === action).length;
  }

  private schedule(): void {
    if (!this.running || (this.o.maxFaults !== undefined && this.ledger.length >= this.o.maxFaults)) return;
    this.timer = setTimeout(() => {
      this.strike();
      this.schedule();
    }, this.rng.exponential(this.o.meanIntervalS * 1000));
  }

  /** One fault on one alive actor, both chosen by the seeded generator. */
  strike(): ChaosRecord | undefined {
    const actions = this.o.actions ?? CHAOS_ACTIONS;
    const action = this.rng.pick(actions);
    const pool = this.supervisor.actors().filter((a) => !this.o.targets || this.o.targets.includes(a.id));
    const actor = pool.length ? this.rng.pick(pool) : undefined;
    if (!actor || actor.state !== "alive") return undefined;
    const key = `${actor.id}#${actor.incarnation}`;
    if (this.struck.has(key) || !injectFault(actor, action)) return undefined;
    this.struck.add(key);
    const record = { at: Date.now(), actor: actor.id, role: actor.role, action, incarnation: actor.incarnation };
    this.ledger.push(record);
    return record;
  }
}
