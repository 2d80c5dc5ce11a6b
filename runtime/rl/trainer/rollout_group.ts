/**
 * Data-parallel generation over the rollout worker group (`worker.rollout.ranks`). Each batch of
 * prompts is cut into `ranks` fixed shards, each sampled with its own seed; a shard goes to a
 * live rank, so which process generates it never changes what it generates. When a rank dies its
 * shard is retried on the restarted incarnation (the actor's own retry); when an elastic group
 * drops a rank, its shards move to the ranks left. Either way the step's result is bit-identical
 * to a calm run's.
 *
 * After every policy update `publish` pushes the new weights to every rank, by version: through
 * one shared-memory segment that the policy writes and every rank maps, or over each rank's
 * connection. Every generate call names the version it needs, so a rank that restarted (and lost
 * its weights) reloads them before it samples.
 *
 * @example
 * ```ts
 * const group = new RolloutGroup(sup, { ranks: 4, transfer: "shared_memory", segmentPath, policy, ref });
 * await group.publish();
 * const gen = await group.generate(prompts, options, (shard) => seeds[shard]);
 * ```
 */
import type { GenerateOptions, GenerateResult } from "../../../native/policy_model.ts";
import type { ActorRollout } from "../../../roles/actor_rollout.ts";
import type { RolloutRank } from "../../../roles/rollout.ts";
import type { WeightPush, WeightRef } from "../../../roles/weights.ts";
import type { Actor } from "../../core/supervisor/actor.ts";
import type { ActorRef } from "../../core/supervisor/actor_ref.ts";
import { ActorCallError, ActorDiedError } from "../../core/supervisor/errors.ts";
import type { Supervisor } from "../../core/supervisor/supervisor.ts";

/** The child id of the rollout group. */
export const ROLLOUT_GROUP = "rollout";

export interface RolloutGroupOptions {
  /** The configured ranks: the number of shards, whatever number of ranks is left. */
  ranks: number;
  /** How weights reach the ranks. */
  transfer: "shared_memory" | "socket";
  /** The shared segment's file (shared_memory). */
  segmentPath: string;
  /** The trained policy, whose weights are pushed. */
  policy: ActorRef<ActorRollout>;
  /** A typed reference to one rank (the trainer counts its calls). */
  ref(actor: Actor): ActorRef<RolloutRank>;
}

/** Times a shard is re-sent to a rank that lost its weights (restarted between push and call) before giving up. */
const MAX_RESYNCS = 8;

export class RolloutGroup {
  /** The version of the weights last pushed; 0 before the first push. */
  private version = 0;
  private current: WeightRef = { version: 0 };
  /** The parameters of the current version (socket transfer), fetched once per version. */
  private params: Promise<Float32Array> | undefined;

  constructor(private readonly sup: Supervisor, private readonly o: RolloutGroupOptions) {}

  /** The ranks still in the group. */
  get live(): readonly Actor[] {
    return this.sup.live(ROLLOUT_GROUP);
  }

  /**
   * Pushes the policy's current weights to every live rank as the next version; the bytes the push
   * moved (perf/weight_sync_bytes): the shared segment written once, or the parameters sent to each
   * rank. A LoRA policy's weights are its adapters alone.
   */
  async publish(): Promise<number> {
    const version = ++this.version;
    const live = this.live;
    let bytes: number;
    if (this.o.transfer === "shared_memory") {
      const segment = await this.o.policy.call("publishWeights", this.o.segmentPath, version);
      this.current = { version, segment };
      this.params = undefined;
      bytes = segment.bytes;
    } else {
      this.current = { version };
      this.params = this.o.policy.call("params");
      bytes = (await this.params).byteLength * live.length;
    }
    await Promise.all(live.map((a) => this.sync(a).catch((e) => this.unlessDropped(a, e))));
    return bytes;
  }

  /** Sends the current version to one rank. */
  private async sync(actor: Actor): Promise<void> {
    const push: WeightPush = this.params ? { ...this.current, params: await this.params } : this.current;
    await this.o.ref(actor).call("syncWeights", push);
  }

  /** A rank that left the group while it was being served is no error; anything else is. */
  private unlessDropped(actor: Actor, e: unknown): void {
    if (!(e instanceof ActorDiedError && this.sup.isDropped(actor))) throw e;
  }

  /**
   * Generates `prompts` over the group: shard k (rows k·n/ranks to (k+1)·n/ranks) with seed
   * `seedOf(k)` on live rank k mod live ranks; the shards' results in row order.
   */
  async generate(prompts: readonly Int32Array[], options: GenerateOptions, seedOf: (shard: number) => number): Promise<GenerateResult> {
    const shards = shardRows(prompts.length, this.o.ranks);
    const parts = await Promise.all(shards.map(([from, to], k) => this.shard(k, prompts.slice(from, to), { ...options, seed: seedOf(k) })));
    return concatResults(parts, options.maxNewTokens);
  }

  /** One shard, on the rank it falls to now; moved when that rank leaves the group. */
  private async shard(k: number, prompts: Int32Array[], options: GenerateOptions): Promise<GenerateResult> {
    for (let resyncs = 0; ;) {
      const live = this.live;
      if (live.length === 0) throw new Error(`rollout group has no rank left for shard ${k}`);
      const actor = live[k % live.length]!;
      try {
        return await this.o.ref(actor).call("generate", prompts, options, this.current);
      } catch (e) {
        if (e instanceof ActorDiedError && this.sup.isDropped(actor)) continue;
        if (!(e instanceof ActorCallError && e.remoteName === "StaleWeightsError") || ++resyncs > MAX_RESYNCS) throw e;
        await this.sync(actor).catch((err) => this.unlessDropped(actor, err));
      }
    }
  }
}

/** [from, to) rows of each of `shards` contiguous shards of `rows` rows (the first ones one longer when it does not divide). */
export function shardRows(rows: number, shards: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let k = 0, from = 0; k < shards; k++) {
    const n = Math.floor(rows / shards) + (k < rows % shards ? 1 : 0);
    if (n > 0) out.push([from, from + n]);
    from += n;
  }
  return out;
}

/** The shards' results as one, rows in shard order. */
export function concatResults(parts: readonly GenerateResult[], maxNewTokens: number): GenerateResult {
  const batch = parts.reduce((n, p) => n + p.batch, 0);
  const tokens = new Int32Array(batch * maxNewTokens);
  const logprobs = new Float32Array(batch * maxNewTokens);
  const lengths = new Int32Array(batch);
  const withValues = parts.length > 0 && parts.every((p) => p.values);
  const values = withValues ? new Float32Array(batch * maxNewTokens) : null;
  let row = 0;
  for (const p of parts) {
    tokens.set(p.tokens, row * maxNewTokens);
    logprobs.set(p.logprobs, row * maxNewTokens);
    values?.set(p.values!, row * maxNewTokens);
    lengths.set(p.lengths, row);
    row += p.batch;
  }
  return { batch, maxNewTokens, tokens, logprobs, values, lengths };
}
