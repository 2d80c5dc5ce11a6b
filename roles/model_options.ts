/**
 * What the trainer passes to every model-backed role, and the mini-batch plan of an update.
 * Plain data: it crosses the process boundary in the actor's spawn spec or a call's arguments.
 */
import type { LossAggregation } from "./loss_agg.ts";
import type { Device, PolicyModelConfig } from "../native/policy_model.ts";

/** A role's model: its architecture and sizes, and the Hugging Face folder its weights come from (none: a new model). */
export interface RoleModel {
  config: Omit<PolicyModelConfig, "valueHead" | "seed">;
  path?: string;
}

export interface ModelRoleOptions {
  /** Architecture and sizes; `seed` makes the initial weights (of the value head only, for a loaded model). */
  model: Omit<PolicyModelConfig, "valueHead"> & { seed: number };
  /** Hugging Face model folder to load the weights from (config.json must agree with `model`). */
  path?: string;
  device: Device;
  /**
   * CPU threads for this actor's native compute: its share of the machine, set by the coordinator
   * (see {@link threadShare}). REVENANT_NUM_THREADS in the actor's environment overrides it.
   * Absent: the native default (REVENANT_NUM_THREADS, else every core).
   */
  threads?: number;
}

/**
 * Each model actor's share of the cores when `actors` of them compute at once: an equal split,
 * at least one thread each (actors that outnumber the cores share them).
 *
 * @example
 * ```ts
 * threadShare(8, 3); // 2
 * threadShare(2, 3); // 1
 * ```
 */
export function threadShare(cores: number, actors: number): number {
  if (!Number.isInteger(cores) || cores < 1) throw new RangeError(`threadShare: cores must be an integer >= 1, got ${cores}`);
  if (!Number.isInteger(actors) || actors < 1) throw new RangeError(`threadShare: actors must be an integer >= 1, got ${actors}`);
  return Math.max(1, Math.floor(cores / actors));
}

/**
 * The thread count an actor uses: REVENANT_NUM_THREADS from its environment when set (a positive
 * integer; anything else is an error naming it), else the coordinator's share.
 */
export function actorThreads(share: number | undefined, env: Record<string, string | undefined>): number | undefined {
  const raw = env.REVENANT_NUM_THREADS;
  if (raw === undefined || raw === "") return share;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 4096) {
    throw new RangeError(`REVENANT_NUM_THREADS must be an integer in 1..4096, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** How an update walks its batch: `epochs` passes, shuffled mini-batches seeded by `seed`. */
export interface UpdatePlan {
  epochs: number;
  miniBatchSize: number;
  seed: number;
  /** The policy loss's aggregation (loss_agg.ts); token-mean when absent. */
  lossAgg?: LossAggregation;
}
