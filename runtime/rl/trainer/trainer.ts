/**
 * The training loop (PPO or GRPO) in the coordinator. Each step runs the phases of phases.ts:
 * rollout, score, reference/values, advantages (GAE or GRPO), update (critic and policy);
 * then validation every `val_interval`, health probes every `health_check_interval` steps and a
 * checkpoint every `checkpoint.interval`, written to disk behind the step that follows it (that
 * step's end, a cancel and the end of the job await it). The next step's rollout is sent
 * right behind the policy's update, so the policy goes from one to the other without waiting on
 * the loop. All compute happens in the supervised role actors; a fault in one of them is
 * repaired underneath this loop, which simply awaits.
 *
 * @example
 * ```ts
 * const result = await fit({ config, job: createJob(config) });
 * console.log(result.finalValScore, result.weightsSha256);
 * ```
 */
import { createHash } from "node:crypto";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../../config/schema.ts";
import type { ModelState } from "../../../native/policy_model.ts";
import type { ActorRollout } from "../../../roles/actor_rollout.ts";
import type { Critic } from "../../../roles/critic.ts";
import { SHIPPED_ROLES } from "../../../roles/index.ts";
import type { RefPolicy } from "../../../roles/ref_policy.ts";
import type { RolloutRank } from "../../../roles/rollout.ts";
import type { Reward } from "../../../roles/reward.ts";
import { ChaosMonkey, type FaultPlan } from "../../core/chaos.ts";
import { acquireLock } from "../../core/checkpoint/lock.ts";
import { CheckpointStore } from "../../core/checkpoint/store.ts";
import { CheckpointWriter } from "../../core/checkpoint/writer.ts";
import { writeFileDurably, type WriteError } from "../../../native/files.ts";
import { EventLog } from "../../core/metrics/events.ts";
import { MetricsRegistry, type RegistryState } from "../../core/metrics/registry.ts";
import type { Actor } from "../../core/supervisor/actor.ts";
import { ActorRef } from "../../core/supervisor/actor_ref.ts";
import { HealthSchedule } from "../../core/supervisor/health.ts";
import type { OutputSink } from "../../core/supervisor/incarnation.ts";
import type { RoleEntry } from "../../core/host/role.ts";
import { Supervisor, type FailureReport } from "../../core/supervisor/supervisor.ts";
import { clusterOptions } from "../../core/supervisor/cluster.ts";
import type { Launcher } from "../../core/supervisor/launcher.ts";
import type { Transport } from "../../core/ipc/transport.ts";
import { DataLoader, type LoaderPosition } from "../tasks/dataset.ts";
import { MetricsFile, type JobPaths } from "./job.ts";
import { advantages, checkSomeScored, clearFailedRows, dropFailedRows, evaluate, rewardFailureLine, klPenalty, logprobTemperature, referenceAndValues, rollout, score, tokenBatch, trainingMetrics, update, type JobActors, type RolloutBatch } from "./phases.ts";
import { tokenizerDir } from "./job_data.ts";
import { checkJobConfig, JobPlan, SHM_DIR } from "./plan.ts";
import { RolloutGroup } from "./rollout_group.ts";
import { JobLoggers } from "../loggers/index.ts";
import type { RunEndStatus } from "../loggers/mlflow.ts";

export interface FitOptions {
  config: Config;
  job: JobPaths;
  /** The config's checked plan (`checkJobConfig`), when the caller made it before creating the job folder. */
  plan?: JobPlan;
  /** Continue from the job's last durable checkpoint. */
  resume?: boolean;
  /** Faults per second injected by the seeded chaos monkey; 0 = none. */
  chaosRate?: number;
  /** Seed of the chaos monkey; default derived from the job seed and the start step. */
  chaosSeed?: number;
  /**
   * Faults by step and call count (`FaultPlan`): the same faults on every machine. Counted are
   * the trainer's calls to each actor within a step (generate, logprobs, values, update; the
   * initial evaluation is step 0), in the order the trainer makes them. A step's generate is sent
   * behind the previous step's update (see RolloutAhead) and counts as its own step's first call.
   */
  faultPlan?: FaultPlan;
  /**
   * Called after every step with its metrics. A returned promise is awaited before the next step
   * starts: what happens between two steps (a node brought back, a check) happens there. The next
   * step's generate may already be with the policy by then (see RolloutAhead); like any call, it
   * is retried if its actor dies.
   */
  onStep?(step: number, metrics: Record<string, number>): unknown;
  /** Human-readable notes (resume, checkpoint warnings, failures). */
  onNote?(line: string): void;
  /** Actor output sink; default: stderr with the actor's prefix. */
  output?: OutputSink;
  roles?: Readonly<Record<string, RoleEntry>>;
  /**
   * Where actors start and how they connect back, instead of what `config.cluster` says: for
   * embedders with a launcher of their own (and tests that start actors on simulated nodes).
   */
  cluster?: { launcher: Launcher; transport: Transport };
  /** Called once the supervisor exists (for fault injection and live views). */
  onSupervisor?(supervisor: Supervisor): void;
  /** Told the job's plan once it is made: its steps are final there (trainer.total_epochs becomes steps). */
  onPlan?(plan: JobPlan): void;
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
  /** The held-out reward after the last step; null when trainer.val_interval is 0 (no validation at all). */
  finalValScore: number | null;
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

export { checkJobConfig, checkTaskJobConfig, JobConfigError } from "./plan.ts";

interface TrainerState {
  step: number;
  data: LoaderPosition;
  initialValScore?: number;
  /** Fault-tolerance counters, so cumulative metrics survive a resume. */
  metrics?: RegistryState;
}

/**
 * The trainer's calls to its actors, counted per step so a `FaultPlan` can strike "the 2nd call
 * to critic in step 5" on every machine alike. A step's rollout may be sent before the step
 * begins (see RolloutAhead): it is counted in its own step all the same.
 */
class StepCalls {
  private step = 0;
  /** Calls so far to each actor, by step. */
  private readonly counts = new Map<number, Map<string, number>>();

  constructor(private readonly plan: FaultPlan | undefined) {}

  begin(step: number): void {
    this.step = step;
    for (const s of this.counts.keys()) if (s < step) this.counts.delete(s);
  }

  /** The `ActorRef` hook: runs right after each call is handed to its actor. */
  readonly afterSend = (actor: Actor): void => this.count(actor, this.step);

  /** The hook for calls of `step` sent before it begins. */
  forStep(step: number): (actor: Actor) => void {
    return (actor) => this.count(actor, step);
  }

  private count(actor: Actor, step: number): void {
    let counts = this.counts.get(step);
    if (!counts) this.counts.set(step, (counts = new Map()));
    const n = (counts.get(actor.id) ?? 0) + 1;
    counts.set(actor.id, n);
    this.plan?.afterCall(actor, step, n);
  }
}

/**
 * The next step's rollout, sent to the policy right behind this step's update, so the policy
 * starts sampling the moment its update ends instead of after a round trip through the trainer
 * (its result read, the step's bookkeeping, the next call sent and read). The policy serves its
 * calls in the order sent and sampling reads the weights only, so it samples exactly what it
 * would have sampled at the start of the next step; the data position after this step is
 * recorded before the next batch is drawn, so checkpoints hold the same position.
 */
interface RolloutAhead {
  step: number;
  rollout: Promise<RolloutBatch>;
  /** The data position after the step before it (what that step's checkpoint records). */
  data: LoaderPosition;
}

/** The job's actors, typed against their role classes, their calls counted for the fault plan. */
function jobActors(sup: Supervisor, plan: JobPlan, calls: StepCalls, job: JobPaths): JobActors {
  const ref = <R>(id: string) => new ActorRef<R>(sup.actor(id), calls.afterSend);
  const actor = ref<ActorRollout>("actor_rollout");
  const rollout = plan.rolloutRanks > 0
    ? new RolloutGroup(sup, {
      ranks: plan.rolloutRanks, transfer: plan.weightTransfer, segmentPath: weightSegmentPath(job), policy: actor,
      ref: (a) => new ActorRef<RolloutRank>(a, calls.afterSend),
    })
    : undefined;
  return {
    actor,
    ...(plan.useCritic ? { critic: ref<Critic>("critic") } : {}),
    ...(plan.refActor ? { ref: ref<RefPolicy>("ref_policy") } : {}),
    ...(plan.useRef && plan.lora ? { refFromActor: true } : {}),
    ...(plan.data.reward.kind === "module" ? { reward: ref<Reward>("reward") } : {}),
    ...(rollout ? { rolloutGroup: rollout } : {}),
  };
}

/** The process mark of the job's actors: the same for every driver of the job folder (process_mark.ts). */
function jobProcessMark(job: JobPaths): string {
  return createHash("sha256").update(job.dir).digest("hex").slice(0, 16);
}

/** The job's weight segment: named after the job (one driver per job folder), so a resume reuses it. */
function weightSegmentPath(job: JobPaths): string {
  return join(SHM_DIR, `revenant-${job.id}.weights`);
}

/** Runs `phase`, recording its wall time in seconds under `key`. */
async function timed<T>(m: Record<string, number>, key: string, phase: () => Promise<T>): Promise<T> {
  const t = performance.now();
  const out = await phase();
  m[key] = (performance.now() - t) / 1000;
  return out;
}

/**
 * One training step's phases; its metrics and the tokens it processed. `rollout` is the step's
 * rollout (sent ahead, or sent now); `afterUpdateSent` runs once the update calls are on their way.
 */
async function trainStep(plan: JobPlan, actors: JobActors, step: number, rollout: () => Promise<RolloutBatch>, note: (line: string) => void, afterUpdateSent?: () => void): Promise<{ metrics: Record<string, number>; tokens: number }> {
  const m: Record<string, number> = {};
  const r = await timed(m, "timing_s/gen", rollout);
  // The log-probs and values do not wait for the reward: they are sent first, over every row (with
  // a copy of the mask, which dropping failed rows clears), and a failed row's numbers are zeroed
  // once it is known, which is what the calls return for a row whose mask is cleared.
  const reference = referenceAndValues(actors, tokenBatch({ ...r.batch, mask: r.batch.mask.slice() }), logprobTemperature(plan));
  reference.catch(() => {}); // a step whose reward fails never reads it
  const sc = await timed(m, "timing_s/reward", () => score(plan, actors, r.prompts, r.gen));
  const failures = rewardFailureLine(`step ${step}`, sc.errors.length, sc.failed.length, sc.errors[0]);
  if (failures) note(failures);
  checkSomeScored(step, sc);
  dropFailedRows(r.batch, sc.failed);
  const batch = tokenBatch(r.batch);
  const rv = clearFailedRows(await reference, r.batch, sc.failed);
  const t = performance.now();
  const adv = advantages(plan, r.batch, sc.scores, rv.values, klPenalty(plan, r.batch, rv));
  m["timing_s/adv"] = (performance.now() - t) / 1000;
  const updating = update(plan, actors, step, batch, rv, adv);
  afterUpdateSent?.();
  const stats = await updating;
  if (actors.rolloutGroup) m["perf/weight_sync_bytes"] = await timed(m, "timing_s/weight_sync", () => actors.rolloutGroup!.publish());
  return { metrics: Object.assign(m, rv.timing, trainingMetrics(plan, r, sc, rv, adv, stats)), tokens: r.batch.batch * r.batch.seqLen };
}

/**
 * Runs (or resumes) a job. One process drives a job folder at a time: `<job>/job.lock` refuses a
 * second driver (a `train --resume` of a job the coordinator service runs, say) with LockedError.
 */
export async function fit(o: FitOptions): Promise<FitResult> {
  // Makes the data set once, in a worker thread (it is the slow part of the check: seconds for the
  // largest, which a coordinator serving requests cannot spend on its own thread).
  const plan = o.plan ?? (await checkJobConfig(o.config, { offThread: true }));
  o.onPlan?.(plan);
  const lock = acquireLock(join(o.job.dir, "job.lock"), `job ${o.job.id}`, { log: o.onNote ?? (() => {}) });
  try {
    return await train(o, plan);
  } finally {
    lock.release();
  }
}

async function train(o: FitOptions, plan: JobPlan): Promise<FitResult> {
  const started = performance.now();
  // The plan's config: trainer.total_steps as run (set from trainer.total_epochs when given).
  const { config } = plan;
  const { job } = o;
  const note = o.onNote ?? (() => {});
  const metrics = new MetricsRegistry();
  const events = new EventLog(job.events);
  const store = new CheckpointStore(job.checkpoints, config.checkpoint.keep, note);
  // A checkpoint is written while the step after it runs; that step and each exit below await it.
  const checkpoints = new CheckpointWriter(store);
  const metricsFile = new MetricsFile(job.metrics);
  const loader = new DataLoader(plan.data.train, config.data.train_batch_size, plan.seed("data"));
  // A coordinator killed while driving this job left its segment behind (this driver holds the lock).
  if (plan.rolloutRanks > 0) rmSync(weightSegmentPath(job), { force: true });
  const sup = new Supervisor({
    faultTolerance: config.fault_tolerance, roles: o.roles ?? SHIPPED_ROLES, metrics, events, output: o.output, name: job.id,
    mark: jobProcessMark(job), onSweep: note,
    ...(o.cluster ?? clusterOptions(config.cluster, { owner: job.id, events })),
  });
  let failure: FailureReport | undefined;
  sup.onFailure((r) => (failure ??= r));
  // An event that could not be written (disk full, read-only) fails the job with the path named.
  let writeFailure: WriteError | undefined;
  events.onWriteError((e) => (writeFailure ??= e));
  const calls = new StepCalls(o.faultPlan);
  o.onSupervisor?.(sup);
  let monkey: ChaosMonkey | undefined;
  let loggers: JobLoggers | undefined;
  let ended: RunEndStatus = "FAILED";
  let step = 0;
  let tokens = 0;
  const state: TrainerState = { step: 0, data: loader.state };

  try {
    await sup.start(plan.childSpecs());
    const fallbacks = await deviceFallbacks(sup);
    const actors = jobActors(sup, plan, calls, job);
    if (o.resume) await resumeFromCheckpoint();
    await actors.rolloutGroup?.publish();
    for (const line of plan.notes) note(line);
    const startStep = state.step;
    loggers = await JobLoggers.open(config, job, note);
    // trainer.val_interval=0: no validation before or during training.
    const validating = config.trainer.val_interval > 0;
    if (state.initialValScore === undefined && validating && config.trainer.val_before_train) {
      const v = await validate(actors, 0);
      state.initialValScore = v.score;
      loggers.samples(0, v.samples);
    }

    if (o.chaosRate && o.chaosRate > 0) {
      monkey = new ChaosMonkey(sup, { seed: o.chaosSeed ?? plan.seed("chaos", startStep), meanIntervalS: 1 / o.chaosRate });
      monkey.start();
    }
    const health = new HealthSchedule(config.fault_tolerance);
    const every = (n: number) => (n > 0 && step % n === 0) || step === config.trainer.total_steps;
    // Rollout ranks sample only after the new weights are published: no rollout is sent ahead to them.
    const ahead: { next?: RolloutAhead } = {};
    const sendAhead = (next: number) => {
      const data = loader.state;
      const prompts = loader.next();
      const policy = new ActorRef<ActorRollout>(actors.actor.actor, calls.forStep(next));
      const sent = rollout(plan, { ...actors, actor: policy }, next, prompts);
      sent.catch(() => {}); // a step never run (cancelled, failed) leaves it unread
      ahead.next = { step: next, rollout: sent, data };
    };

    for (step = startStep + 1; step <= config.trainer.total_steps; step++) {
      if (o.signal?.aborted) {
        // state.step is the last completed step; keep it so a resume continues from exactly there.
        if (state.step > 0 && (await checkpoints.durableSteps())[0] !== state.step) await saveCheckpoint(sup, checkpoints, state.step, () => state);
        await checkpoints.settled();
        throw new TrainingCancelledError(state.step, o.signal.reason);
      }
      const t0 = performance.now();
      calls.begin(step);
      const sentAhead = ahead.next?.step === step ? ahead.next.rollout : undefined;
      ahead.next = undefined;
      const prompts = sentAhead ? [] : loader.next();
      const nextStep = step < config.trainer.total_steps && !actors.rolloutGroup ? step + 1 : undefined;
      const checkpointDue = every(config.checkpoint.interval);
      const snapshots: { taken?: Promise<Map<string, unknown>> } = {};
      const afterUpdateSent = () => {
        // The checkpoint's snapshots queue right behind the update (the state the step leaves),
        // ahead of the next rollout: they travel and are written while the policy samples.
        if (checkpointDue) {
          snapshots.taken = sup.snapshotAll();
          snapshots.taken.catch(() => {}); // a step that fails after this never reads them
        }
        if (nextStep !== undefined) sendAhead(nextStep);
      };
      const { metrics: m, tokens: stepTokens } = await trainStep(
        plan, actors, step, () => sentAhead ?? rollout(plan, actors, step, prompts), note, afterUpdateSent,
      ).catch(rethrowFailure);
      if (validating && every(config.trainer.val_interval)) {
        const v = await timed(m, "timing_s/testing", () => validate(actors, step));
        m["val/score"] = v.score;
        m["val/reward_failures"] = v.failures;
        loggers.samples(step, v.samples);
      }
      // The probe is answered out of band, so it runs while the checkpoint's snapshots are taken;
      // the trainer state (with the health it sets) is read once it is in.
      const probe = health.due(step) ? sup.probeHealth() : undefined;
      const recordState = async () => {
        await probe;
        return Object.assign(state, { step, data: ahead.next?.data ?? loader.state, metrics: metrics.save() });
      };
      if (checkpointDue) {
        await timed(m, "timing_s/save_checkpoint", async () => {
          await saveCheckpoint(sup, checkpoints, step, recordState, snapshots.taken);
          if (config.checkpoint.save_hf_model === "every_checkpoint" && plan.exportsHf) await exportCheckpoint(plan, actors, job.dir, step);
        });
      } else {
        await recordState();
        // The last checkpoint's write ran behind this step and is on disk before the step ends:
        // a coordinator killed later resumes from it (a checkpoint step awaits it in its write).
        await checkpoints.settled();
      }
      checkFailure();
      tokens += stepTokens;
      m["timing_s/step"] = (performance.now() - t0) / 1000;
      m["perf/throughput"] = stepTokens / m["timing_s/step"];
      Object.assign(m, metrics.step(), fallbacks);
      if (config.trainer.logger.includes("jsonl")) metricsFile.append(step, m);
      await loggers.step(step, m);
      await o.onStep?.(step, m);
    }
    await checkpoints.settled();
    monkey?.stop();
    // A fault injected at the very end is repaired before the job is declared done.
    await monkey?.settled();
    await o.faultPlan?.settled();
    await sup.settled().catch(rethrowFailure);
    checkFailure();
    const finalValScore = validating ? (metricsFile.read().at(-1)?.["val/score"] ?? (await validate(actors, config.trainer.total_steps)).score) : null;
    if (config.checkpoint.save_hf_model !== "never" && plan.exportsHf) {
      const merged = plan.lora && config.worker.actor.lora.save_merged ? join(job.dir, "hf_model_merged") : undefined;
      const saved = await exportPolicy(plan, actors, join(job.dir, "hf_model"), merged);
      note(plan.lora
        ? `policy's LoRA adapters saved in PEFT's layout: ${saved}${merged ? `; merged into the base: ${merged}` : ""}`
        : `policy saved as a Hugging Face folder: ${saved}`);
    }
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
    ended = "FINISHED";
    return result;
  } catch (e) {
    // A failure mid-write stops the job with its checkpoint whole (or its temporary folder gone).
    await checkpoints.settled().catch(() => {});
    if (e instanceof TrainingCancelledError) ended = "KILLED";
    if (failure && !(e instanceof TrainingFailedError)) throw new TrainingFailedError(failure, step);
    throw writeFailure ?? e;
  } finally {
    monkey?.stop();
    await sup.shutdown();
    if (plan.rolloutRanks > 0) rmSync(weightSegmentPath(job), { force: true });
    await loggers?.close(ended);
  }

  /** Loads the latest usable checkpoint into the actors and the trainer; drops metrics after it. */
  async function resumeFromCheckpoint(): Promise<void> {
    const ckpt = store.latest<TrainerState>();
    if (!ckpt) {
      metricsFile.truncateAfter(0);
      note(`no usable checkpoint in ${job.checkpoints}; starting ${job.id} from step 0`);
      return;
    }
    for (const [id, s] of ckpt.states) await sup.actor(id).loadSnapshot(s);
    Object.assign(state, ckpt.manifest.trainer);
    if (state.metrics) metrics.restore(state.metrics);
    loader.seek(state.data);
    metricsFile.truncateAfter(ckpt.step);
    note(`resumed ${job.id} from checkpoint step ${ckpt.step}`);
  }

  /** The held-out evaluation, with one console line when the reward failed on some of its rows. */
  async function validate(actors: JobActors, at: number) {
    const v = await evaluate(plan, actors);
    const line = rewardFailureLine(`validation at step ${at}`, v.failures, v.rows, v.firstError);
    if (line) note(line);
    return v;
  }

  function checkFailure(): void {
    if (failure) throw new TrainingFailedError(failure, step);
    if (writeFailure) throw writeFailure;
    checkpoints.check();
  }

  /** A call that failed because its actor could not be kept alive ends the job with the report. */
  function rethrowFailure(e: unknown): never {
    if (failure) throw new TrainingFailedError(failure, step);
    throw writeFailure ?? e;
  }
}

/**
 * Model actors that were given device "auto" and compute on the CPU, as each found on its own
 * machine (the banner says what the coordinator's machine has): `device_fallback/<role>` = 1 in
 * every step's metrics.
 */
async function deviceFallbacks(sup: Supervisor): Promise<Record<string, number>> {
  const metrics: Record<string, number> = {};
  for (const r of await sup.healthReports()) if (typeof r.report?.fallback === "string") metrics[`device_fallback/${r.role}`] = 1;
  return metrics;
}

/** Writes the policy as a Hugging Face folder, with the job's tokenizer files; the folder. */
async function exportPolicy(plan: JobPlan, actors: JobActors, dir: string, mergedDir?: string): Promise<string> {
  const tok = plan.data.tokenizer;
  await actors.actor.call("exportHf", {
    dir, tokenizerDir: tokenizerDir(plan.config), eosTokenId: tok.eosId, padTokenId: tok.padId, dtype: plan.config.checkpoint.hf_dtype,
    ...(mergedDir ? { mergedDir } : {}),
    ...(tok.bosId === undefined ? {} : { bosTokenId: tok.bosId }),
  });
  return dir;
}

/** `<job>/hf_checkpoints/step-<n>`, keeping the newest `checkpoint.keep`. */
async function exportCheckpoint(plan: JobPlan, actors: JobActors, jobDir: string, step: number): Promise<void> {
  const root = join(jobDir, "hf_checkpoints");
  await exportPolicy(plan, actors, join(root, `step-${step}`));
  const steps = readdirSync(root).map((n) => /^step-(\d+)$/.exec(n)).filter((m) => m !== null).map((m) => Number(m![1])).sort((a, b) => b - a);
  for (const old of steps.slice(plan.config.checkpoint.keep)) rmSync(join(root, `step-${old}`), { recursive: true, force: true });
}

/**
 * Starts writing every stateful actor's snapshot (`taken`, when they were asked for already) with
 * the trainer's state (`trainer`, read while the snapshots come in). The snapshots arrive and are
 * written behind the next step (`checkpoints.settled()` awaits them): each actor takes its own in
 * call order, before any call of that step.
 */
async function saveCheckpoint(
  sup: Supervisor, checkpoints: CheckpointWriter, step: number, trainer: () => TrainerState | Promise<TrainerState>, taken?: Promise<Map<string, unknown>>,
): Promise<void> {
  const state = await trainer();
  const states = (taken ?? sup.snapshotAll()).then((snapshots) => new Map([...snapshots].filter(([, s]) => s !== undefined)));
  await checkpoints.write(step, states, { ...state });
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
