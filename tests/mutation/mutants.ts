/**
 * The mutants of `bun run mutate` (run.ts): one-line changes to the core logic, each the shape of
 * a real bug (a boundary off by one, a dropped check, a wrong factor, a step left out), and the
 * few test files that should notice it. `from` must occur exactly once in `file`; the run stops
 * on a mutant that no longer matches, so this list keeps up with the code.
 *
 * A mutant no test can kill because it does not change behaviour is kept with `equivalent`
 * saying why; any other survivor is a missing test.
 */

export interface Mutant {
  /** What part of the project it probes, for the report (and `bun run mutate <word>`). */
  area: string;
  /** The file mutated, relative to the repository root. A C++ file is rebuilt for its mutant. */
  file: string;
  /** Text found exactly once in the file, on one line... */
  from: string;
  /** ...and what replaces it. */
  to: string;
  /** The test files that should fail on it: few and fast, so the whole run fits on two cores. */
  tests: string[];
  /** Only the tests whose name matches (`bun test -t`), where the rest of a file is slow. */
  filter?: string;
  /** Why no test can see this change, when none can. */
  equivalent?: string;
}

const SUPERVISOR = ["tests/core/supervisor.test.ts", "tests/core/units.test.ts", "tests/core/actor_parts.test.ts"];
const ACTOR_PARTS = ["tests/core/actor_parts.test.ts"];
const HANGS = ["tests/core/actor_parts.test.ts", "tests/core/supervisor.test.ts"];
const CHECKPOINT = ["tests/rl/checkpoint.test.ts"];
const FRAME = ["tests/core/frame.test.ts", "tests/core/fuzz.test.ts"];
const TRAINER_MATH = ["tests/rl/phases.test.ts"];
const NATIVE_LOSS = ["tests/native/native_exe.test.ts", "tests/native/policy_model.test.ts"];
const REWARDS = ["tests/rl/rewards/math_answer.test.ts", "tests/rl/rewards/builtin_rewards.test.ts"];
const HF = ["tests/native/hf_safetensors.test.ts", "tests/native/hf_config.test.ts", "tests/native/hf_model_folder.test.ts"];
const AUTH = ["tests/service/routes.test.ts"];
const LIMITS = ["tests/service/limits.test.ts"];
const CONFIG = ["tests/config/config.test.ts"];

export const MUTANTS: Mutant[] = [
  // ---- supervisor limits: max_restarts, max_task_retries, the intensity window, backoff
  { area: "supervisor limits", file: "runtime/core/supervisor/supervisor.ts", tests: SUPERVISOR,
    from: "if (max !== -1 && actor.restarts >= max) {", to: "if (max !== -1 && actor.restarts > max) {" },
  { area: "supervisor limits", file: "runtime/core/supervisor/supervisor.ts", tests: SUPERVISOR,
    from: "if (recent >= this.ft.restart_intensity) {", to: "if (recent > this.ft.restart_intensity) {" },
  { area: "supervisor limits", file: "runtime/core/supervisor/call_queue.ts", tests: SUPERVISOR,
    from: "const exhausted = maxRetries !== -1 && call.attempts > maxRetries;", to: "const exhausted = maxRetries !== -1 && call.attempts >= maxRetries;" },
  { area: "supervisor limits", file: "runtime/core/supervisor/call_queue.ts", tests: SUPERVISOR,
    from: "if (counted) call.attempts++;", to: "call.attempts++;" },
  { area: "supervisor limits", file: "runtime/core/supervisor/backoff.ts", tests: SUPERVISOR,
    from: "return Math.min(initialS * 2 ** Math.max(0, n - 1), maxS) * 1000;", to: "return Math.min(initialS * 2 ** Math.max(0, n), maxS) * 1000;" },
  { area: "supervisor limits", file: "runtime/core/supervisor/backoff.ts", tests: SUPERVISOR,
    from: "const since = now - periodS * 1000;", to: "const since = now - periodS;" },
  { area: "supervisor limits", file: "runtime/core/supervisor/actor.ts", tests: SUPERVISOR,
    from: "this.consecutiveRestarts = 0;", to: "// progress not noted" },
  { area: "supervisor limits", file: "runtime/core/supervisor/supervisor.ts", tests: SUPERVISOR,
    from: "if (!intended) this.metrics.recordFailure(actor.role);", to: "this.metrics.recordFailure(actor.role);" },

  // ---- the replay log
  { area: "replay log", file: "runtime/core/supervisor/replay_log.ts", tests: ACTOR_PARTS,
    from: "const budget = Math.max(this.o.maxReplayMs, 2 * this.snapshotCostMs);", to: "const budget = Math.max(this.o.maxReplayMs, this.snapshotCostMs);" },
  { area: "replay log", file: "runtime/core/supervisor/replay_log.ts", tests: ACTOR_PARTS,
    from: "this.calls.length < this.o.autoSnapshotCalls", to: "this.calls.length <= this.o.autoSnapshotCalls" },
  { area: "replay log", file: "runtime/core/supervisor/replay_log.ts", tests: ACTOR_PARTS,
    from: "void this.takeSnapshot().catch(() => {}).finally(() => (this.snapshotPending = false));", to: "void this.takeSnapshot().catch(() => {});" },
  { area: "replay log", file: "runtime/core/supervisor/replay_log.ts", tests: ACTOR_PARTS,
    from: "    this.costMs = 0;", to: "    // cost kept" },
  { area: "replay log", file: "runtime/core/supervisor/replay_log.ts", tests: ACTOR_PARTS,
    from: "return [...load, ...this.calls];", to: "return [...this.calls, ...load];" },
  { area: "replay log", file: "runtime/core/supervisor/actor.ts", tests: HANGS,
    from: "if (this.info.stateful && !this.info.readOnly.includes(call.method)) this.replay.record(", to: "if (this.info.stateful) this.replay.record(" },

  // ---- deadlines and pings
  { area: "deadlines and pings", file: "runtime/core/supervisor/deadline_clock.ts", tests: HANGS,
    from: "if (this.clock.now() >= this.deadlineAt) this.expired(this.watched);", to: "if (this.clock.now() > this.deadlineAt) this.expired(this.watched);" },
  { area: "deadlines and pings", file: "runtime/core/supervisor/deadline_clock.ts", tests: HANGS,
    from: "if (this.timer === undefined || this.deadlineAt < this.timerAt) this.aim(this.deadlineAt);", to: "if (this.timer === undefined) this.aim(this.deadlineAt);" },
  { area: "deadlines and pings", file: "runtime/core/supervisor/deadline_clock.ts", tests: HANGS,
    from: "this.deadlineAt = this.since + deadlineS * 1000;", to: "this.deadlineAt = this.since + deadlineS * 100;" },
  { area: "deadlines and pings", file: "runtime/core/supervisor/ping_watch.ts", tests: HANGS,
    from: "return now - this.lastSeen > this.timeoutMs;", to: "return now - this.lastSeen > 10 * this.timeoutMs;" },
  { area: "deadlines and pings", file: "runtime/core/supervisor/ping_watch.ts", tests: HANGS,
    from: "if (now - this.lastCheck > 2 * this.intervalMs) this.lastSeen", to: "if (false) this.lastSeen" },
  { area: "deadlines and pings", file: "runtime/core/supervisor/incarnation.ts", tests: HANGS,
    from: "      this.channel?.send({ t: \"ping\", id: ++this.pingId });", to: "      // no ping sent" },

  // ---- checkpoint store
  { area: "checkpoint store", file: "runtime/core/checkpoint/store.ts", tests: CHECKPOINT,
    from: "      await this.disk.fsyncDir(tmp);", to: "      // temporary folder not synced" },
  { area: "checkpoint store", file: "runtime/core/checkpoint/store.ts", tests: CHECKPOINT,
    from: "      await this.disk.fsyncDir(this.root);", to: "      // parent not synced" },
  { area: "checkpoint store", file: "runtime/core/checkpoint/store.ts", tests: CHECKPOINT,
    from: "for (const step of this.steps().slice(this.keep))", to: "for (const step of this.steps().slice(this.keep + 1))" },
  { area: "checkpoint store", file: "runtime/core/checkpoint/store.ts", tests: CHECKPOINT,
    from: "if (bytes.byteLength !== f.bytes || sha256 !== f.sha256) {", to: "if (bytes.byteLength !== f.bytes && sha256 !== f.sha256) {" },
  { area: "checkpoint store", file: "runtime/core/checkpoint/store.ts", tests: CHECKPOINT,
    from: "if (manifest.step !== step) throw", to: "if (manifest.step !== step && false) throw" },
  { area: "checkpoint store", file: "runtime/core/checkpoint/store.ts", tests: CHECKPOINT,
    from: ".sort((a, b) => b - a);", to: ".sort((a, b) => a - b);" },

  // ---- frame codec
  { area: "frame codec", file: "runtime/core/ipc/frame.ts", tests: FRAME,
    from: "c.payloadBytes = align(c.payloadBytes + array.byteLength);", to: "c.payloadBytes = c.payloadBytes + array.byteLength;" },
  { area: "frame codec", file: "runtime/core/ipc/frame.ts", tests: FRAME,
    from: "if (offset % ALIGN !== 0 || end > c.payloadEnd) {", to: "if (end > c.payloadEnd) {" },
  { area: "frame codec", file: "runtime/core/ipc/frame.ts", tests: FRAME,
    from: "if (flags !== 0) throw", to: "if (flags > 1) throw" },
  { area: "frame codec", file: "runtime/core/ipc/frame.ts", tests: FRAME,
    from: "if (payloadLength % ALIGN !== 0) throw", to: "if (payloadLength % 4 !== 0) throw" },
  { area: "frame codec", file: "runtime/core/ipc/frame.ts", tests: FRAME,
    from: "this.ctx.payloadStart = align(HEADER_BYTES + this.bodyLength) - HEADER_BYTES;", to: "this.ctx.payloadStart = this.bodyLength;" },

  // ---- advantages
  { area: "advantages", file: "runtime/rl/trainer/advantages.ts", tests: TRAINER_MATH,
    from: "next = delta + gamma * lam * next;", to: "next = delta + lam * next;" },
  { area: "advantages", file: "runtime/rl/trainer/advantages.ts", tests: TRAINER_MATH,
    from: "const delta = r + gamma * nextValue - values[t]!;", to: "const delta = r + nextValue - values[t]!;" },
  { area: "advantages", file: "runtime/rl/trainer/advantages.ts", tests: TRAINER_MATH,
    from: "returns[t] = next + values[t]!;", to: "returns[t] = next;" },
  { area: "advantages", file: "runtime/rl/trainer/advantages.ts", tests: TRAINER_MATH,
    from: "const scale = 1 / Math.sqrt(v / (n - 1) + eps);", to: "const scale = 1 / Math.sqrt(v / n + eps);" },
  { area: "advantages", file: "runtime/rl/trainer/advantages.ts", tests: TRAINER_MATH,
    from: "const std = groupSize > 1 ? Math.sqrt(varSum / (groupSize - 1)) : 0;", to: "const std = groupSize > 1 ? Math.sqrt(varSum / groupSize) : 0;" },

  // ---- PPO and value losses (C++)
  { area: "ppo loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "const bool clip_active = l2 > l1;", to: "const bool clip_active = l2 < l1;" },
  { area: "ppo loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "double g = clip_active ? 0.0 : -a * ratio;", to: "double g = clip_active ? 0.0 : a * ratio;" },
  { area: "ppo loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "g += cfg.kl_coef * (1.0 - std::exp(d));", to: "g += cfg.kl_coef * (std::exp(d) - 1.0);" },
  { area: "ppo loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "s.approx_kl += w * -log_ratio;", to: "s.approx_kl += w * log_ratio;" },
  { area: "value loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "if (e2 * e2 > loss) {", to: "if (e2 * e2 < loss) {" },
  { area: "value loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "g = (v > old - clip_range && v < old + clip_range) ? e2 : 0.0;", to: "g = e2;" },
  { area: "value loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "s.vf_clip_frac += w;", to: "s.vf_clip_frac += 0;" },
  { area: "value loss", file: "native/src/core/ppo.cc", tests: NATIVE_LOSS,
    from: "s.vf_loss += 0.5 * w * loss;", to: "s.vf_loss += w * loss;" },

  // ---- mini-batches
  { area: "minibatch", file: "roles/minibatch.ts", tests: TRAINER_MATH,
    from: "const rng = new Rng(plan.seed + epoch * 7919);", to: "const rng = new Rng(plan.seed);" },
  { area: "minibatch", file: "roles/minibatch.ts", tests: TRAINER_MATH,
    from: "for (let start = 0; start + size <= full.batch; start += size) {", to: "for (let start = 0; start + size < full.batch; start += size) {" },
  { area: "minibatch", file: "roles/minibatch.ts", tests: TRAINER_MATH,
    from: "(out[k] ?? 0) + v / list.length", to: "(out[k] ?? 0) + v" },

  // ---- rewards
  { area: "rewards", file: "runtime/rl/rewards/exact_match.ts", tests: REWARDS,
    from: "return text.normalize(\"NFC\").replaceAll(\"\\r\\n\", \"\\n\").trim();", to: "return text.normalize(\"NFC\").replaceAll(\"\\r\\n\", \"\\n\");" },
  { area: "rewards", file: "runtime/rl/rewards/math_answer.ts", tests: REWARDS,
    from: "const hashes = text.lastIndexOf(\"####\");", to: "const hashes = text.indexOf(\"####\");" },
  { area: "rewards", file: "runtime/rl/rewards/math_answer.ts", tests: REWARDS,
    from: "const last = numbers[numbers.length - 1]!;", to: "const last = numbers[0]!;" },
  { area: "rewards", file: "runtime/rl/rewards/math_answer.ts", tests: REWARDS,
    from: "return Math.abs(a.value - b.value) <= NUMERIC_TOLERANCE * Math.max(1, Math.abs(a.value), Math.abs(b.value));", to: "return Math.abs(a.value - b.value) <= NUMERIC_TOLERANCE;" },
  { area: "rewards", file: "runtime/rl/rewards/math_answer.ts", tests: REWARDS,
    from: "|| Number(den) === 0) return undefined;", to: ") return undefined;" },

  // ---- the Hugging Face loader (config.json, safetensors, model folders)
  { area: "hf loader", file: "native/hf/safetensors.ts", tests: HF,
    from: "if (begin > end || end > dataBytes) {", to: "if (begin > end) {" },
  { area: "hf loader", file: "native/hf/safetensors.ts", tests: HF,
    from: "if (cur.begin < prev.end) {", to: "if (cur.begin < prev.begin) {" },
  { area: "hf loader", file: "native/hf/safetensors.ts", tests: HF,
    from: "for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 16;", to: "for (let i = 0; i < halves.length; i++) bits[i] = halves[i]! << 15;" },
  { area: "hf loader", file: "native/hf/config.ts", tests: HF,
    from: "if (heads % kvHeads !== 0) read.fail(", to: "if (kvHeads % heads !== 0) read.fail(" },
  { area: "hf loader", file: "native/hf/model_folder.ts", tests: HF,
    from: "if (extra.length > 0) throw new ModelFolderError(", to: "if (extra.length > 1) throw new ModelFolderError(" },

  // ---- service auth (bearer token, loopback Host, actor handshake) and limits
  { area: "service auth", file: "runtime/service/server/app.ts", tests: AUTH,
    from: "(c.req.path === \"/healthz\" ? next() : auth(c, next))", to: "(c.req.path.startsWith(\"/\") ? next() : auth(c, next))" },
  { area: "service auth", file: "runtime/service/server/app.ts", tests: AUTH,
    from: "const loopbackOnly = o.loopbackHostOnly ?? !o.token;", to: "const loopbackOnly = o.loopbackHostOnly ?? false;" },
  { area: "service auth", file: "runtime/core/ipc/handshake.ts", tests: ["tests/core/tcp_transport.test.ts"],
    from: "return x.length === y.length && timingSafeEqual(x, y);", to: "return x.length === y.length;" },
  { area: "service limits", file: "runtime/service/server/app.ts", tests: LIMITS,
    from: "if (this.open >= this.max) {", to: "if (this.open > this.max) {" },
  { area: "service limits", file: "runtime/service/server/job_manager.ts", tests: LIMITS,
    from: "if (this.queue.length + this.storing >= this.maxQueuedJobs) {", to: "if (this.queue.length >= this.maxQueuedJobs) {" },
  { area: "service limits", file: "runtime/service/server/job_manager.ts", tests: LIMITS,
    from: "if (rank >= this.keepFinishedJobs || finishedAt(j.record) < cutoff) this.jobs.delete(j.id);", to: "if (rank > this.keepFinishedJobs || finishedAt(j.record) < cutoff) this.jobs.delete(j.id);" },

  // ---- config refinements (cross-key rules)
  { area: "config refinements", file: "runtime/core/supervisor/options.ts", tests: CONFIG,
    from: "if (v[high] > v[low]) return;", to: "if (v[high] >= v[low]) return;" },
  { area: "config refinements", file: "config/schema.ts", tests: CONFIG,
    from: ".refine((m) => m.width % m.heads === 0,", to: ".refine((m) => m.width >= m.heads," },
  { area: "config refinements", file: "config/schema.ts", tests: CONFIG,
    from: ".refine((d) => d.min_digits <= d.max_digits,", to: ".refine((d) => d.min_digits < d.max_digits," },
  { area: "config refinements", file: "runtime/core/supervisor/options.ts", tests: ["tests/deploy/slurm.test.ts"], filter: "the cluster config section",
    from: "if (c.tls_key && !c.tls_cert) issue(", to: "if (false) issue(" },
];
