/**
 * The training loop (PPO or GRPO) in the coordinator. Each step: sample prompts, roll out,
 * score rewards, reference log-probs, values, advantages (GAE or GRPO), critic update, policy
 * update; health probes every `health_check_interval` steps; a checkpoint every
 * `checkpoint.interval`; evaluation every `val_interval`. All compute happens in the supervised
 * role actors; a fault in one of them is repaired underneath this loop, which simply awaits.
 *
 * @example
 * ```ts
 * const result = await fit({ config, job: createJob(config) });
 * console.log(result.finalValScore, result.weightsSha256);
 * ```
 */
import { createHash } from "node:crypto";
import type { Config } from "../../config/schema.ts";
import { SHIPPED_ROLES, type ModelRoleOptions, type UpdatePlan } from "../../roles/index.ts";
import type { GenerateResult, ModelState } from "../../native/policy_model.ts";
import { ChaosMonkey, type FaultPlan } from "../chaos.ts";
import { writeFileDurably, type WriteError } from "../files.ts";
import { CheckpointStore } from "../checkpoint/store.ts";
import { EventLog } from "../metrics/events.ts";
import { MetricsRegistry, type RegistryState } from "../metrics/registry.ts";
import type { Actor } from "../supervisor/actor.ts";
import { HealthSchedule } from "../supervisor/health.ts";
import type { OutputSink } from "../supervisor/incarnation.ts";
import type { RoleEntry } from "../supervisor/role.ts";
import { Supervisor, type FailureReport } from "../supervisor/supervisor.ts";
import { DataLoader, makeDataset, type Dataset, type LoaderPosition } from "../tasks/dataset.ts";
import { reward } from "../tasks/tasks.ts";
import { decode, EOS, promptTokens, VOCAB_SIZE } from "../tasks/tokenizer.ts";
import { gae, grpo } from "./advantages.ts";
import { buildBatch, type SequenceBatch } from "./batch.ts";
import { MetricsFile, type JobPaths } from "./job.ts";
import { deriveSeed } from "./seeds.ts";

export interface FitOptions {
  config: Config;
  job: JobPaths;
  /** Continue from the job's last durable checkpoint. */
  resume?: boolean;
  /** Faults per second injected by the seeded chaos monkey; 0 = none. */
  chaosRate?: number;
  /** Seed of the chaos monkey; default derived from the job seed and the start step. */
  chaosSeed?: number;
  /**
   * Faults by step and call count (`FaultPlan`): the same faults on every machine. Counted are
   * the trainer's calls to each actor within a step (generate, logprobs, values, update; the
   * initial evaluation is step 0), in the order the trainer makes them.
   */
  faultPlan?: FaultPlan;
  /** Called after every step with its metrics. */
  onStep?(step: number, metrics: Record<string, number>): void;
  /** Human-readable notes (resume, checkpoint warnings, failures). */
  onNote?(line: string): void;
  /** Actor output sink; default: stderr with the actor's prefix. */
  output?: OutputSink;
  roles?: Readonly<Record<string, RoleEntry>>;
  /** Called once the supervisor exists (for fault injection and live views). */
  onSupervisor?(supervisor: Supervisor): void;
  /**
   * Cancels the job: checked at the top of each step; once aborted, a final checkpoint is saved
   * and fit throws TrainingCancelledError (the abort reason is on its `reason`).
   */
  signal?: AbortSignal;
}

export interface FitResult {
  job: string;
  steps: number;
  startStep: number;
  initialValScore: number | undefined;
  finalValScore: number;
  failures: number;
  restarts: number;
  wallS: number;
  tokensPerS: number;
  /** SHA-256 of the final policy (and critic) weights. */
  weightsSha256: string;
  chaosFaults: number;
}

/** The job failed: an actor could not be kept alive (or fault tolerance is off). */
export class TrainingFailedError extends Error {
  override name = "TrainingFailedError";
  constructor(readonly report: FailureReport, readonly step: number) {
    super(`training failed at step ${step}: ${report.offender} (role ${report.role}): ${report.reason}`);
  }
}

/** The job was cancelled through `FitOptions.signal`; its last completed step is checkpointed. */
export class TrainingCancelledError extends Error {
  override name = "TrainingCancelledError";
  constructor(readonly step: number, readonly reason: unknown) {
    super(`training cancelled after step ${step}${typeof reason === "string" ? `: ${reason}` : ""}`);
  }
}

/** A configuration that validates key by key but cannot run as a whole (shapes, data sizes). */
export class JobConfigError extends RangeError {
  override name = "JobConfigError";
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

/** Checks that a configuration can run (sizes fit the task) without starting anything. */
export function checkJobConfig(config: Config): void {
  let dataset: Dataset;
  try {
    dataset = makeDataset(config.data);
  } catch (e) {
    throw new JobConfigError("data", (e as Error).message);
  }
  new JobPlan(config, dataset);
}

interface TrainerState {
  step: number;
  data: LoaderPosition;
  initialValScore?: number;
  /** Fault-tolerance counters, so cumulative metrics survive a resume. */
  metrics?: RegistryState;
}

/**
 * The trainer's calls to its actors, counted per step so a `FaultPlan` can strike "the 2nd call
 * to critic in step 5" on every machine alike.
 */
class StepCalls {
  private step = 0;
  private readonly counts = new Map<string, number>();

  constructor(private readonly plan: FaultPlan | undefined) {}

  begin(step: number): void {
    this.step = step;
    this.counts.clear();
  }

  call<T>(actor: Actor, method: string, args: unknown[]): Promise<T> {
    const n = (this.counts.get(actor.id) ?? 0) + 1;
    this.counts.set(actor.id, n);
    const result = actor.call<T>(method, args);
    this.plan?.afterCall(actor, this.step, n);
    return result;
  }
}

/** Everything fixed for a job: shapes, seeds, the actors' options. */
class JobPlan {
  readonly seqLen: number;
  readonly maxNew: number;
  readonly groupSize: number;
  readonly useCritic: boolean;
  readonly useRef: boolean;

  constructor(readonly config: Config, readonly dataset: Dataset) {
    const actor = config.worker.actor;
    this.maxNew = actor.max_new_tokens;
    this.groupSize = actor.rollout_n;
    this.useCritic = config.algorithm.adv_estimator === "gae";
    this.useRef = config.algorithm.kl_coef > 0;
    const longestPrompt = Math.max(...[...dataset.train, ...dataset.val].map((p) => promptTokens(p).length));
    this.seqLen = longestPrompt + this.maxNew;
    const needed = dataset.task.maxAnswerLength(config.data.max_digits) + 1;
    if (this.maxNew < needed) {
      throw new JobConfigError("worker.actor.max_new_tokens", `worker.actor.max_new_tokens=${this.maxNew} is too short: ${config.data.task} answers of up to ` +
        `${config.data.max_digits} digits need ${needed} tokens with the end token`);
    }
    for (const role of ["actor", "critic"] as const) {
      const ctx = config.worker[role].model.context;
      if (ctx < this.seqLen) {
        throw new JobConfigError(`worker.${role}.model.context`, `worker.${role}.model.context=${ctx} is too short: prompts of up to ${longestPrompt} tokens plus ` +
          `max_new_tokens=${this.maxNew} need ${this.seqLen}`);
      }
    }
    if (config.algorithm.adv_estimator === "grpo" && this.groupSize < 2) {
      throw new JobConfigError("worker.actor.rollout_n", "algorithm.adv_estimator=grpo needs worker.actor.rollout_n ≥ 2 (responses per prompt to compare)");
    }
  }

  seed(...tags: (string | number)[]): number {
    return deriveSeed(this.config.trainer.seed, ...tags);
  }

  roleOptions(role: "actor" | "critic" | "ref"): ModelRoleOptions {
    const w = this.config.worker;
    const m = role === "critic" ? w.critic.model : w.actor.model;
    // The reference is the initial policy: same sizes, same init seed.
    const initSeed = this.seed("init", role === "critic" ? "critic" : "policy");
    return { model: { vocab: VOCAB_SIZE, ...m, seed: initSeed }, device: w[role].device };
  }

  childSpecs() {
    const specs = [{ id: "actor_rollout", role: "actor_rollout", options: { ...this.roleOptions("actor") } }];
    if (this.useCritic) specs.push({ id: "critic", role: "critic", options: { ...this.roleOptions("critic") } });
    if (this.useRef) specs.push({ id: "ref_policy", role: "ref_policy", options: { ...this.roleOptions("ref") } });
    return specs;
  }
}

function mean(xs: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return xs.length ? s / xs.length : 0;
}

/** Scores every row's response: decode up to EOS, reward against the prompt. */
function scoreRollouts(plan: JobPlan, prompts: readonly string[], gen: GenerateResult): Float32Array {
  const scores = new Float32Array(prompts.length);
  for (let r = 0; r < prompts.length; r++) {
    const row = gen.tokens.subarray(r * plan.maxNew, r * plan.maxNew + gen.lengths[r]!);
    const { text, ended } = decode(row);
    scores[r] = reward(plan.dataset.task, prompts[r]!, text, ended);
  }
  return scores;
}

export async function fit(o: FitOptions): Promise<FitResult> {
  const started = performance.now();
  const { config, job } = o;
  const note = o.onNote ?? (() => {});
  checkJobConfig(config);
  const dataset = makeDataset(config.data);
  const plan = new JobPlan(config, dataset);
  const metrics = new MetricsRegistry();
  const events = new EventLog(job.events);
  const store = new CheckpointStore(job.checkpoints, config.checkpoint.keep, note);
  const metricsFile = new MetricsFile(job.metrics);
  const loader = new DataLoader(dataset.train, config.data.train_batch_size, plan.seed("data"));
  const sup = new Supervisor({ faultTolerance: config.fault_tolerance, roles: o.roles ?? SHIPPED_ROLES, metrics, events, output: o.output, name: job.id });
  let failure: FailureReport | undefined;
  sup.onFailure((r) => (failure ??= r));
  // An event that could not be written (disk full, read-only) fails the job with the path named.
  let writeFailure: WriteError | undefined;
  events.onWriteError((e) => (writeFailure ??= e));
  const calls = new StepCalls(o.faultPlan);
  o.onSupervisor?.(sup);
  let monkey: ChaosMonkey | undefined;
  let step = 0;
  let tokens = 0;
  const state: TrainerState = { step: 0, data: loader.state };

  try {
    await sup.start(plan.childSpecs());
    const actor = sup.actor("actor_rollout");
    const critic = plan.useCritic ? sup.actor("critic") : undefined;
    const ref = plan.useRef ? sup.actor("ref_policy") : undefined;

    if (o.resume) {
      const ckpt = store.latest<TrainerState>();
      if (ckpt) {
        for (const [id, s] of ckpt.states) await sup.actor(id).loadSnapshot(s);
        Object.assign(state, ckpt.manifest.trainer);
        if (state.metrics) metrics.restore(state.metrics);
        loader.seek(state.data);
        metricsFile.truncateAfter(ckpt.step);
        note(`resumed ${job.id} from checkpoint step ${ckpt.step}`);
      } else {
        metricsFile.truncateAfter(0);
        note(`no usable checkpoint in ${job.checkpoints}; starting ${job.id} from step 0`);
      }
    }
    const startStep = state.step;
    if (state.initialValScore === undefined) state.initialValScore = await evaluate(plan, sup, calls);

    if (o.chaosRate && o.chaosRate > 0) {
      monkey = new ChaosMonkey(sup, { seed: o.chaosSeed ?? plan.seed("chaos", startStep), meanIntervalS: 1 / o.chaosRate });
      monkey.start();
    }
    const health = new HealthSchedule(config.fault_tolerance);
    const checkFailure = () => {
      if (failure) throw new TrainingFailedError(failure, step);
      if (writeFailure) throw writeFailure;
    };

    for (step = startStep + 1; step <= config.trainer.total_steps; step++) {
      if (o.signal?.aborted) {
        // state.step is the last completed step; keep it so a resume continues from exactly there.
        if (state.step > 0 && store.steps()[0] !== state.step) await saveCheckpoint(sup, store, state.step, state);
        throw new TrainingCancelledError(state.step, o.signal.reason);
      }
      const t0 = performance.now();
      calls.begin(step);
      const m: Record<string, number> = {};
      const prompts = loader.next().flatMap((p) => Array<string>(plan.groupSize).fill(p));
      const promptToks = prompts.map((p) => Int32Array.from(promptTokens(p)));

      let t = performance.now();
      const gen = await calls.call<GenerateResult>(actor, "generate", [promptToks, {
        maxNewTokens: plan.maxNew, temperature: config.worker.actor.temperature, seed: plan.seed(step, "generate"), eosToken: EOS,
      }]).catch(rethrowFailure);
      m["timing_s/gen"] = (performance.now() - t) / 1000;
      const batch: SequenceBatch = buildBatch(promptToks, gen.tokens, gen.lengths, plan.maxNew, plan.seqLen);
      const scores = scoreRollouts(plan, prompts, gen);
      const tokenBatch = { tokens: batch.tokens, mask: batch.mask, batch: batch.batch, seqLen: batch.seqLen };

      t = performance.now();
      const [oldLogprobs, refLogprobs, values] = await Promise.all([
        calls.call<Float32Array>(actor, "logprobs", [tokenBatch]),
        ref && calls.call<Float32Array>(ref, "logprobs", [tokenBatch]),
        critic && calls.call<Float32Array>(critic, "values", [tokenBatch]),
      ]).catch(rethrowFailure);
      m["timing_s/old_log_prob"] = (performance.now() - t) / 1000;

      const layout = { rows: batch.batch, seqLen: batch.seqLen, mask: batch.mask };
      const { advantages, returns } = plan.useCritic
        ? gae(layout, scores, values!, config.algorithm.gamma, config.algorithm.lam)
        : { advantages: grpo(layout, scores, plan.groupSize, config.algorithm.norm_adv_by_std_in_grpo), returns: undefined };

      const updatePlan = (role: string, w: { ppo_epochs: number; ppo_mini_batch_size: number }): UpdatePlan =>
        ({ epochs: w.ppo_epochs, miniBatchSize: w.ppo_mini_batch_size, seed: plan.seed(step, "update", role) });
      t = performance.now();
      const [criticStats, actorStats] = await Promise.all([
        critic && calls.call<Record<string, number>>(critic, "update", [
          { ...tokenBatch, returns: returns!, oldValues: values! },
          { lr: config.worker.critic.lr, weightDecay: config.worker.critic.weight_decay, maxGradNorm: config.worker.critic.grad_clip, clipRange: config.worker.critic.cliprange_value },
          updatePlan("critic", config.worker.critic),
        ]),
        calls.call<Record<string, number>>(actor, "update", [
          { ...tokenBatch, advantages, oldLogprobs, ...(refLogprobs ? { refLogprobs } : {}) },
          {
            lr: config.worker.actor.lr, weightDecay: config.worker.actor.weight_decay, maxGradNorm: config.worker.actor.grad_clip,
            clipRatio: config.worker.actor.clip_ratio, klCoef: plan.useRef ? config.algorithm.kl_coef : 0, entropyCoef: config.worker.actor.entropy_coeff,
          },
          updatePlan("actor", config.worker.actor),
        ]),
      ]).catch(rethrowFailure);
      m["timing_s/update"] = (performance.now() - t) / 1000;

      m["critic/score/mean"] = mean(scores);
      m["critic/score/max"] = Math.max(...scores);
      m["critic/score/min"] = Math.min(...scores);
      m["response_length/mean"] = mean(gen.lengths);
      m["actor/pg_loss"] = actorStats!.pgLoss!;
      m["actor/kl"] = actorStats!.klLoss!;
      m["actor/approx_kl"] = actorStats!.approxKl!;
      m["actor/entropy"] = actorStats!.entropy!;
      m["actor/clip_frac"] = actorStats!.clipFrac!;
      m["actor/grad_norm"] = actorStats!.gradNorm!;
      if (criticStats) {
        m["critic/vf_loss"] = criticStats.vfLoss!;
        m["critic/vf_clipfrac"] = criticStats.vfClipFrac!;
        m["critic/grad_norm"] = criticStats.gradNorm!;
        m["critic/values/mean"] = maskedMean(values!, batch.mask);
      }
      m["actor/advantages/mean"] = maskedMean(advantages, batch.mask);

      if (config.trainer.val_interval > 0 && step % config.trainer.val_interval === 0 || step === config.trainer.total_steps) {
        t = performance.now();
        m["val/score"] = await evaluate(plan, sup, calls);
        m["timing_s/testing"] = (performance.now() - t) / 1000;
      }
      if (health.due(step)) await sup.probeHealth();
      state.step = step;
      state.data = loader.state;
      state.metrics = metrics.save();
      if (step % config.checkpoint.interval === 0 || step === config.trainer.total_steps) {
        t = performance.now();
        await saveCheckpoint(sup, store, step, state);
        m["timing_s/save_checkpoint"] = (performance.now() - t) / 1000;
      }
      checkFailure();
      const stepTokens = batch.batch * batch.seqLen;
      tokens += stepTokens;
      m["timing_s/step"] = (performance.now() - t0) / 1000;
      m["perf/throughput"] = stepTokens / m["timing_s/step"];
      Object.assign(m, metrics.step());
      if (config.trainer.logger.includes("jsonl")) metricsFile.append(step, m);
      o.onStep?.(step, m);
    }
    monkey?.stop();
    // A fault injected at the very end is repaired before the job is declared done.
    await o.faultPlan?.settled();
    await sup.settled().catch(rethrowFailure);
    checkFailure();
    const finalValScore = (metricsFile.read().at(-1)?.["val/score"]) ?? await evaluate(plan, sup, calls);
    const weightsSha256 = await weightsChecksum(sup);
    const totals = sup.actors().reduce((acc, a) => {
      const t = metrics.totals(a.role);
      return acc.roles.has(a.role) ? acc : { roles: acc.roles.add(a.role), failures: acc.failures + t.failures, restarts: acc.restarts + t.restarts };
    }, { roles: new Set<string>(), failures: 0, restarts: 0 });
    const wallS = (performance.now() - started) / 1000;
    const result: FitResult = {
      job: job.id, steps: config.trainer.total_steps, startStep, initialValScore: state.initialValScore, finalValScore,
      failures: totals.failures, restarts: totals.restarts, wallS, tokensPerS: tokens / wallS, weightsSha256,
      chaosFaults: (monkey?.ledger.length ?? 0) + (o.faultPlan?.injected ?? 0),
    };
    writeFileDurably(job.summary, JSON.stringify(result, null, 2) + "\n");
    return result;
  } catch (e) {
    if (failure && !(e instanceof TrainingFailedError)) throw new TrainingFailedError(failure, step);
    throw writeFailure ?? e;
  } finally {
    monkey?.stop();
    await sup.shutdown();
  }

  /** A call that failed because its actor could not be kept alive ends the job with the report. */
  function rethrowFailure(e: unknown): never {
    if (failure) throw new TrainingFailedError(failure, step);
    throw writeFailure ?? e;
  }
}

function maskedMean(x: Float32Array, mask: Float32Array): number {
  let s = 0;
  let n = 0;
  for (let i = 0; i < x.length; i++) if (mask[i] !== 0) {
    s += x[i]!;
    n++;
  }
  return n ? s / n : 0;
}

/** Greedy decoding on the held-out set; the mean reward. */
async function evaluate(plan: JobPlan, sup: Supervisor, calls: StepCalls): Promise<number> {
  const actor = sup.actor("actor_rollout");
  const scores: number[] = [];
  const chunk = 256;
  for (let i = 0; i < plan.dataset.val.length; i += chunk) {
    const prompts = plan.dataset.val.slice(i, i + chunk);
    const gen = await calls.call<GenerateResult>(actor, "generate", [prompts.map((p) => Int32Array.from(promptTokens(p))), {
      maxNewTokens: plan.maxNew, temperature: 0, seed: 0, eosToken: EOS,
    }]);
    scores.push(...scoreRollouts(plan, prompts, gen));
  }
  return mean(scores);
}

async function saveCheckpoint(sup: Supervisor, store: CheckpointStore, step: number, state: TrainerState): Promise<void> {
  const snapshots = await sup.snapshotAll();
  const states = new Map([...snapshots].filter(([, s]) => s !== undefined));
  store.save(step, states, { ...state });
}

/** SHA-256 over the stateful actors' weights, in actor order: the run's fingerprint. */
async function weightsChecksum(sup: Supervisor): Promise<string> {
  const hash = createHash("sha256");
  for (const a of sup.actors()) {
    const s = (await a.takeSnapshot()) as { model?: ModelState } | undefined;
    if (s?.model) hash.update(new Uint8Array(s.model.params.buffer, s.model.params.byteOffset, s.model.params.byteLength));
  }
  return hash.digest("hex");
}
