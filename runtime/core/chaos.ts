/**
 * Fault injection, for tests and for users who want to see recovery happen: kill an actor
 * (SIGKILL), hang it (SIGSTOP: it stops answering pings and is killed as hung), or corrupt its
 * channel (bytes that are not a frame arrive on it, as if the actor had written them).
 *
 * Two schedulers:
 * - `FaultPlan`: faults by count, never by time ("kill critic on its 2nd call of step 5").
 *   The same plan strikes the same calls on every machine, fast or slow, so a test that says
 *   "faults were injected" injects them everywhere. Seeded random plans come from `randomPlan`.
 * - `ChaosMonkey`: faults at random, seeded wall-clock intervals (`--chaos <rate>`), for people
 *   watching recovery happen. How many land depends on the machine's speed.
 *
 * @example
 * ```ts
 * const plan = FaultPlan.parse("critic@5:2=kill,actor_rollout@7:1=hang");
 * await fit({ config, job, faultPlan: plan });
 * console.log(plan.ledger);
 * ```
 */
import type { Actor } from "./supervisor/actor.ts";
import type { Incarnation } from "./supervisor/incarnation.ts";
import type { Supervisor } from "./supervisor/supervisor.ts";
import { Rng } from "./rng.ts";
import { after, type Timer } from "./timers.ts";

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

/**
 * Garbage arrives on the actor's channel, read by the coordinator as if the actor had written
 * it: a protocol error, handled as a failure (cause `protocol`). Injected on the coordinator's
 * side, so the wire protocol has no test hook.
 */
export function corruptActor(actor: Actor): boolean {
  const inc = actor.current;
  if (!inc?.alive) return false;
  inc.corrupt();
  return true;
}

function signalActor(actor: Actor, signal: NodeJS.Signals): boolean {
  const inc = actor.current;
  if (!inc?.alive) return false;
  inc.signal(signal);
  return true;
}

/** Injects one fault; false if the actor has no live process to strike. */
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
  /** The deaths of the incarnations struck. */
  private readonly deaths: Promise<unknown>[] = [];
  private readonly rng: Rng;
  private timer: Timer | undefined;
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
    this.timer?.cancel();
  }

  /** Faults injected, per action. */
  count(action?: ChaosAction): number {
    return this.ledger.filter((r) => action === undefined || r.action === action).length;
  }

  private schedule(): void {
    if (!this.running || (this.o.maxFaults !== undefined && this.ledger.length >= this.o.maxFaults)) return;
    this.timer = after(this.rng.exponential(this.o.meanIntervalS * 1000), () => {
      this.strike();
      this.schedule();
    });
  }

  /**
   * Resolves once every struck incarnation has died (a hang is found only at its ping timeout), so
   * a job stopped right after a strike still counts that fault's death and restart.
   */
  async settled(): Promise<void> {
    await Promise.all(this.deaths);
  }

  /** One fault on one alive actor, both chosen by the seeded generator. */
  strike(): ChaosRecord | undefined {
    const actions = this.o.actions ?? CHAOS_ACTIONS;
    const action = this.rng.pick(actions);
    const pool = this.supervisor.actors().filter((a) => !this.o.targets || this.o.targets.includes(a.id));
    const actor = pool.length ? this.rng.pick(pool) : undefined;
    if (!actor || actor.state !== "alive") return undefined;
    const key = `${actor.id}#${actor.incarnation}`;
    const incarnation = actor.current;
    if (this.struck.has(key) || !injectFault(actor, action)) return undefined;
    this.struck.add(key);
    if (incarnation) this.deaths.push(incarnation.died);
    const record = { at: Date.now(), actor: actor.id, role: actor.role, action, incarnation: actor.incarnation };
    this.ledger.push(record);
    return record;
  }
}

/** One planned fault: strike `actor` right after it is sent its `call`-th call (1-based) of `step`. */
export interface PlannedFault {
  actor: string;
  step: number;
  call: number;
  action: ChaosAction;
}

/** A fault plan could not be read; the message names the entry and the allowed form. */
export class FaultPlanError extends RangeError {
  override name = "FaultPlanError";
}

const PLAN_ENTRY = /^([A-Za-z0-9_./-]+)@(\d+):(\d+)=([a-z]+)$/;
const PLAN_FORM = "<actor>@<step>:<call>=<kill|hang|corrupt>, e.g. critic@5:2=kill or rollout/1@3:1=kill";

/**
 * Faults scheduled by (actor, step, call number), never by elapsed time. The caller counts the
 * calls it makes to each actor within a step and asks `take` after sending each one; a fault
 * due there is removed from the plan and struck once the actor is alive (so a fault planned
 * while the actor is still recovering from the previous one waits for it instead of vanishing).
 */
export class FaultPlan {
  readonly ledger: ChaosRecord[] = [];
  private readonly pending = new Map<string, PlannedFault>();
  private readonly strikes = new Set<Promise<void>>();
  /** Incarnations struck already (weakly held: dead ones are collected). */
  private readonly struck = new WeakSet<Incarnation>();

  constructor(faults: readonly PlannedFault[]) {
    for (const f of faults) {
      if (!Number.isInteger(f.step) || f.step < 0 || !Number.isInteger(f.call) || f.call < 1) {
        throw new FaultPlanError(`fault ${JSON.stringify(f)}: step must be an integer ≥ 0 and call an integer ≥ 1`);
      }
      if (!CHAOS_ACTIONS.includes(f.action)) throw new FaultPlanError(`fault ${JSON.stringify(f)}: action must be one of ${CHAOS_ACTIONS.join(", ")}`);
      const key = FaultPlan.key(f.actor, f.step, f.call);
      if (this.pending.has(key)) throw new FaultPlanError(`fault plan strikes ${f.actor} at step ${f.step}, call ${f.call} twice`);
      this.pending.set(key, { ...f });
    }
  }

  /** Reads `critic@5:2=kill,actor_rollout@7:1=hang` (entries separated by commas or spaces). */
  static parse(text: string): FaultPlan {
    const entries = text.split(/[\s,]+/).filter(Boolean);
    if (!entries.length) throw new FaultPlanError(`empty fault plan: expected ${PLAN_FORM}`);
    return new FaultPlan(entries.map((entry) => {
      const m = PLAN_ENTRY.exec(entry);
      if (!m) throw new FaultPlanError(`fault plan entry ${JSON.stringify(entry)}: expected ${PLAN_FORM}`);
      return { actor: m[1]!, step: Number(m[2]), call: Number(m[3]), action: m[4] as ChaosAction };
    }));
  }

  private static key(actor: string, step: number, call: number): string {
    return `${actor}@${step}:${call}`;
  }

  /** Faults not struck yet. */
  get remaining(): PlannedFault[] {
    return [...this.pending.values()];
  }

  /** Faults struck so far. */
  get injected(): number {
    return this.ledger.length;
  }

  /**
   * Called right after `actor` was sent its `call`-th call of `step`: strikes if a fault is
   * planned there. The strike happens before the actor can answer (no await in between) when it
   * is alive, or as soon as it is alive again.
   */
  afterCall(actor: Actor, step: number, call: number): void {
    const key = FaultPlan.key(actor.id, step, call);
    const fault = this.pending.get(key);
    if (!fault) return;
    this.pending.delete(key);
    if (this.strikeNow(actor, fault)) return;
    const strike = this.strikeWhenFresh(actor, fault).finally(() => this.strikes.delete(strike));
    this.strikes.add(strike);
  }

  /** Resolves once every fault already taken has been struck (or its actor is gone). */
  async settled(): Promise<void> {
    while (this.strikes.size) await Promise.all([...this.strikes]);
  }

  /**
   * Waits for an incarnation that was not struck yet and is alive, then strikes it. One fault per
   * incarnation: a second strike on a process already dying (a corrupt frame not yet noticed)
   * would be one death for two faults.
   */
  private async strikeWhenFresh(actor: Actor, fault: PlannedFault): Promise<void> {
    for (;;) {
      const inc = actor.current;
      if (inc && this.struck.has(inc)) await inc.died;
      try {
        await actor.whenAlive();
      } catch {
        return; // the actor failed or stopped: nothing left to strike
      }
      if (this.strikeNow(actor, fault)) return;
    }
  }

  private strikeNow(actor: Actor, fault: PlannedFault): boolean {
    const inc = actor.current;
    if (actor.state !== "alive" || !inc || this.struck.has(inc) || !injectFault(actor, fault.action)) return false;
    this.struck.add(inc);
    this.ledger.push({ at: Date.now(), actor: actor.id, role: actor.role, action: fault.action, incarnation: actor.incarnation });
    return true;
  }
}

export interface RandomPlanOptions {
  seed: number;
  /** Steps to strike in, inclusive. */
  steps: readonly [number, number];
  /** Each actor and the most calls it is sent per step (a fault picks a call in 1..n). */
  calls: Readonly<Record<string, number>>;
  /** Faults in all (at most one per actor, step and call). */
  count: number;
  actions?: readonly ChaosAction[];
}

/** A seeded random fault plan: the same seed gives the same plan on every machine. */
export function randomPlan(o: RandomPlanOptions): FaultPlan {
  const rng = new Rng(o.seed);
  const actors = Object.keys(o.calls);
  const [first, last] = o.steps;
  const capacity = (last - first + 1) * actors.reduce((s, a) => s + o.calls[a]!, 0);
  if (!actors.length || last < first || o.count > capacity) {
    throw new FaultPlanError(`cannot place ${o.count} faults on ${actors.length} actors over steps ${first}..${last}`);
  }
  const faults = new Map<string, PlannedFault>();
  while (faults.size < o.count) {
    const actor = rng.pick(actors);
    const fault = { actor, step: first + rng.int(last - first + 1), call: 1 + rng.int(o.calls[actor]!), action: rng.pick(o.actions ?? CHAOS_ACTIONS) };
    faults.set(`${actor}@${fault.step}:${fault.call}`, fault);
  }
  return new FaultPlan([...faults.values()].sort((a, b) => a.step - b.step || a.call - b.call || a.actor.localeCompare(b.actor)));
}
