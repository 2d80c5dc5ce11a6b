/**
 * The Slurm launcher: each actor is an `srun` of the actor host, one task on one node.
 *
 * - Inside an allocation (SLURM_JOB_ID set, as in an `sbatch` script) each actor is a job step
 *   of it: `srun --jobid=<job> --overlap` (CPU actors share the allocation's CPUs and memory with
 *   every other step), or `--exact --gpus=N` for an actor that has GPUs, so two such actors never
 *   get the same device. Outside one, each actor is a one-task job of its own.
 * - Placement (`chooseNode`): each actor has a home node among the candidates
 *   (cluster.slurm.nodes, else the allocation's): its role's node in `place` where one is named,
 *   else the next one in turn, spreading actors in the order they first start. Every incarnation
 *   starts on its home with `--nodelist` while the home is usable. A node is unusable once srun
 *   said so ("Node failure on ...", a task launch that failed there) or `sinfo` calls it down,
 *   drained, failed or not responding; then the incarnation starts on the next usable candidate
 *   after the home, in list order. The home itself never changes: sinfo is asked again before
 *   every restart, and a node it calls usable again (back in service) is a home again, so the
 *   next restart of an actor that had moved away goes back there. A running actor is never
 *   moved because its home came back. With no candidates (no allocation, no list), Slurm
 *   chooses, and failed nodes are `--exclude`d.
 * - Environment: srun gets the actor's environment (spawn spec included, never on the command
 *   line, where `ps` would show the token) with `--export=ALL`, minus the coordinator's own
 *   SLURM_* / SRUN_* / SALLOC_* / SBATCH_* variables: those are srun's input (an sbatch's
 *   SLURM_NTASKS or SLURM_EXPORT_ENV=NONE would change what it starts). Slurm sets the step's own.
 * - The node: srun runs with `--verbose`, whose "launching StepId=J.S on host H" line names the
 *   step and the node; the launcher keeps it (ActorProcess.node) and tells `onPlaced`. Those
 *   verbose lines stay out of the actor's output; srun's errors stay in (they explain a death).
 * - Signals: srun forwards SIGTERM, SIGHUP, SIGUSR1/2, SIGQUIT, SIGCONT to the task. SIGKILL and
 *   SIGSTOP cannot be forwarded (and SIGINT makes srun print a status), so those go to the step with
 *   `scancel --signal`; a SIGKILL's srun is killed too if the step has not ended after a grace. A
 *   job of its own whose srun was killed is cancelled, so no allocation is left behind.
 * - Exit status: srun exits 128+n when its task was killed by signal n; that is read as the signal.
 *
 * Requirements: the runtime binary and this repository at the same paths on every node (a shared
 * file system), and the coordinator's TCP address reachable from them (cluster.transport tcp).
 *
 * @example
 * ```ts
 * const launcher = slurmLauncher({ partition: "gpu", gpus: { actor_rollout: 1 }, onPlaced: (p) => console.log(p.node) });
 * new Supervisor({ faultTolerance, roles, launcher, transport: { kind: "tcp", host: "0.0.0.0", port: 0, advertise: hostname() } });
 * ```
 */
import { spawnSync } from "node:child_process";
import { CommandProcess, fireAndForget } from "./command_process.ts";
import { hostCommand, type ActorProcess, type LaunchRequest, type Launcher, type Placement } from "./launcher.ts";

export interface SlurmLauncherOptions {
  /** Partition of the jobs srun makes outside an allocation; default the cluster's. */
  partition?: string;
  /** Candidate nodes, in order; default the allocation's nodes (none outside one: Slurm chooses). */
  nodes?: readonly string[];
  /** Home node by role (one of the candidates); roles not named spread over the candidates. */
  place?: Readonly<Record<string, string>>;
  /** GPUs per actor, by role; absent or 0 = none. */
  gpus?: Readonly<Record<string, number>>;
  /** Extra srun options for every actor. */
  srunArgs?: readonly string[];
  /** The coordinator's environment, read for SLURM_JOB_ID and SLURM_JOB_NODELIST; default process.env. */
  env?: Readonly<Record<string, string | undefined>>;
  /** Paths of the Slurm commands (a site's wrappers; tests); default found on PATH. */
  commands?: Partial<Record<SlurmCommand, string>>;
  /** Told where each incarnation runs, once known. */
  onPlaced?(placement: Placement): void;
  /** After `scancel --signal=KILL`, how long srun may take to end before it is killed itself. */
  killGraceMs?: number;
}

type SlurmCommand = "srun" | "sinfo" | "scancel" | "scontrol" | "squeue" | "sstat";

/** What one srun line says: the step and its node, the job it made, or a node that failed. */
export type SrunNews =
  | { kind: "step"; job: string; step: string; node: string }
  | { kind: "job"; job: string }
  | { kind: "node_failed"; node: string };

/** srun forwards these to its task; the others go through scancel. */
const FORWARDED: ReadonlySet<string> = new Set(["SIGTERM", "SIGHUP", "SIGUSR1", "SIGUSR2", "SIGQUIT", "SIGCONT", "SIGALRM"]);
/** Variables that are srun's input, not the actor's: dropped from srun's environment. */
const SLURM_INPUT = /^(SLURM_|SRUN_|SALLOC_|SBATCH_)/;
/** Node states (sinfo %T) an actor cannot start on. A trailing `*` means "not responding". */
const UNUSABLE_STATE = /\*|down|drain|fail|maint|reboot|unknown|power|future|inval|not_responding/i;
const DEFAULT_KILL_GRACE_MS = 5000;
/** Bound on a Slurm query made on the supervisor's thread before a restart. */
const QUERY_TIMEOUT_MS = 10_000;
/** Bound on each query of `inspect`, which runs just before a hung actor is killed. */
const INSPECT_TIMEOUT_MS = 2000;

/** Reads one srun stderr line; undefined for a line that says nothing the launcher needs. */
export function parseSrunLine(line: string): SrunNews | undefined {
  let m = /launching (?:StepId=)?(\d+)\.(\d+) on host ([^,\s]+)/.exec(line);
  if (m) return { kind: "step", job: m[1]!, step: m[2]!, node: m[3]! };
  m = /\bjobid (\d+): nodes|\bjob (\d+) queued and waiting|\bJob (\d+) step creation/.exec(line);
  if (m) return { kind: "job", job: (m[1] ?? m[2] ?? m[3])! };
  m = /Node failure on ([^\s,]+)|failed on node ([^\s:,]+)|Nodes? ([^\s:,]+) (?:is|are) (?:down|not responding)/i.exec(line);
  if (m) return { kind: "node_failed", node: (m[1] ?? m[2] ?? m[3])! };
  return undefined;
}

/** srun's own chatter from `--verbose`: kept out of the actor's output (errors and warnings are kept). */
export function isSrunChatter(line: string): boolean {
  if (!line.startsWith("srun: ")) return false;
  const text = line.slice(6);
  return !/^(error|warning|fatal|Force Terminated|Job step aborted|forcing job termination|Requested|Required)/i.test(text) &&
    /^(defined options|-{5,}|end of defined options|[a-z][a-z-]* +: |jobid \d+: nodes|launching |[a-z_]+\/[a-z_]+: |job \d+ (queued|has been allocated)|Waiting for|Nodes? )/i.test(text);
}

/** `sinfo -h -N -o "%N %T"` output → node → state. */
export function parseNodeStates(text: string): Map<string, string> {
  const states = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [node, state] = line.trim().split(/\s+/);
    if (node && state) states.set(node, state);
  }
  return states;
}

export const isUsableState = (state: string): boolean => !UNUSABLE_STATE.test(state);

/**
 * The node for an actor: its `home` while usable; else the next usable candidate after it (so a
 * lost node's actors spread over the rest in order); an actor with no home yet takes the
 * `ordinal`-th usable one. Undefined when there are no candidates (Slurm chooses); throws when
 * none is usable.
 */
export function chooseNode(candidates: readonly string[], unusable: ReadonlySet<string>, home: string | undefined, ordinal: number): string | undefined {
  if (candidates.length === 0) return undefined;
  const usable = candidates.filter((n) => !unusable.has(n));
  if (usable.length === 0) {
    throw new Error(`no Slurm node to start on: ${candidates.join(", ")} ${candidates.length === 1 ? "is" : "are all"} down, drained or failed`);
  }
  if (home === undefined) return usable[ordinal % usable.length];
  if (!unusable.has(home) && candidates.includes(home)) return home;
  const from = candidates.indexOf(home);
  for (let i = 1; i <= candidates.length; i++) {
    const node = candidates[(from + i + candidates.length) % candidates.length]!;
    if (!unusable.has(node)) return node;
  }
  return usable[0];
}

export interface SrunPlan {
  actor: string;
  /** The allocation to run in as a step; undefined: a job of its own. */
  jobId?: string;
  partition?: string;
  node?: string;
  exclude?: readonly string[];
  gpus: number;
  srunArgs: readonly string[];
  command: readonly string[];
}

/** The srun command line for one actor (`--opt=value` forms only, the actor's command after `--`). */
export function srunArgv(srun: string, p: SrunPlan): string[] {
  const argv = [srun, "--verbose", "--nodes=1", "--ntasks=1", "--export=ALL", `--job-name=revenant.${p.actor}`];
  if (p.jobId !== undefined) argv.push(`--jobid=${p.jobId}`, ...(p.gpus > 0 ? ["--exact"] : ["--overlap"]));
  else if (p.partition) argv.push(`--partition=${p.partition}`);
  if (p.node) argv.push(`--nodelist=${p.node}`);
  else if (p.exclude?.length) argv.push(`--exclude=${p.exclude.join(",")}`);
  if (p.gpus > 0) argv.push(`--gpus=${p.gpus}`);
  return [...argv, ...p.srunArgs, "--", ...p.command];
}

/** srun's environment: the actor's, less the coordinator's Slurm input variables (SLURM_CONF kept). */
export function srunEnv(actorEnv: Readonly<Record<string, string>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(actorEnv)) if (name === "SLURM_CONF" || !SLURM_INPUT.test(name)) env[name] = value;
  return env;
}

/** Runs a Slurm query on this thread, bounded; its stdout, or an Error saying why there is none. */
function query(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, timeoutMs = QUERY_TIMEOUT_MS): string | Error {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", timeout: timeoutMs, env: env as Record<string, string> });
  if (r.error) return r.error;
  if (r.status !== 0) return new Error(`${argv.slice(0, 2).join(" ")} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim().split("\n").pop()}`);
  return r.stdout;
}

/** One actor's srun: what the launcher learned of its step, and how to signal it. */
class SrunProcess extends CommandProcess {
  job: string | undefined;
  step: string | undefined;
  private killTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(argv: string[], env: Record<string, string>, private readonly launcher: SlurmLauncher, readonly request: LaunchRequest, readonly ownJob: boolean) {
    super(argv, env, (line) => this.read(line));
    void this.exited.then((status) => {
      if (this.killTimer) clearTimeout(this.killTimer);
      // srun killed outright leaves a job of its own allocated: release it.
      if (this.ownJob && this.job && status.signal === "SIGKILL") launcher.scancel([this.job]);
    });
  }

  private read(line: string): boolean {
    const news = parseSrunLine(line);
    if (news?.kind === "job") this.job = news.job;
    if (news?.kind === "step") {
      this.job = news.job;
      this.step = news.step;
      const known = this.node;
      this.node = news.node;
      if (known === undefined) this.launcher.placed(this);
    }
    if (news?.kind === "node_failed") this.launcher.nodeFailed(news.node);
    return !isSrunChatter(line);
  }

  override kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (this.ended) return;
    if (FORWARDED.has(signal)) return this.signalLocal(signal);
    if (this.step === undefined) {
      // Not started on a node yet: srun holds a request only; SIGTERM makes it withdraw that.
      if (signal === "SIGKILL") this.signalLocal("SIGTERM");
    } else {
      this.launcher.scancel([`--signal=${signal.replace(/^SIG/, "")}`, `${this.job}.${this.step}`]);
    }
    if (signal === "SIGKILL") this.killTimer ??= setTimeout(() => this.signalLocal("SIGKILL"), this.launcher.killGraceMs);
  }
}

class SlurmLauncher implements Launcher {
  readonly name = "slurm";
  readonly killGraceMs: number;
  private readonly env: Readonly<Record<string, string | undefined>>;
  private candidates: readonly string[] | undefined;
  /** Each actor's node: where its next incarnation starts unless that node is gone. */
  private readonly home = new Map<string, string>();
  private readonly ordinals = new Map<string, number>();
  private readonly unusable = new Set<string>();

  constructor(private readonly o: SlurmLauncherOptions) {
    this.env = o.env ?? process.env;
    this.killGraceMs = o.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  }

  private command(name: SlurmCommand): string {
    return this.o.commands?.[name] ?? name;
  }

  /** The allocation this coordinator runs in, if any. */
  get jobId(): string | undefined {
    return this.env.SLURM_JOB_ID || undefined;
  }

  /** Nodes actors may be placed on: the configured list, else the allocation's (expanded once). */
  private nodes(): readonly string[] {
    if (this.candidates) return this.candidates;
    if (this.o.nodes?.length) return (this.candidates = [...this.o.nodes]);
    const list = this.env.SLURM_JOB_NODELIST;
    if (!this.jobId || !list) return (this.candidates = []);
    const out = query([this.command("scontrol"), "show", "hostnames", list], this.env);
    if (out instanceof Error) throw new Error(`cannot read the allocation's nodes (SLURM_JOB_NODELIST=${list}): ${out.message}`);
    return (this.candidates = out.split("\n").map((s) => s.trim()).filter(Boolean));
  }

  /** Asks sinfo which candidates are gone; a node it reports usable again is forgiven. */
  private refreshNodeStates(nodes: readonly string[]): void {
    const out = query([this.command("sinfo"), "-h", "-N", "-o", "%N %T", `--nodes=${nodes.join(",")}`], this.env);
    if (out instanceof Error) return; // keep what srun told us; srun itself will refuse a dead node
    for (const [node, state] of parseNodeStates(out)) {
      if (isUsableState(state)) this.unusable.delete(node);
      else this.unusable.add(node);
    }
  }

  launch(r: LaunchRequest): ActorProcess {
    const nodes = this.nodes();
    // A restart is where a lost node matters: look before choosing (one bounded query).
    if (nodes.length > 0 && r.incarnation > 1) this.refreshNodeStates(nodes);
    if (!this.ordinals.has(r.actor)) this.ordinals.set(r.actor, this.ordinals.size);
    const node = chooseNode(nodes, this.unusable, this.homeOf(r, nodes), this.ordinals.get(r.actor)!);
    // The first node an unplaced actor gets is its home from then on; a move never changes it.
    if (node && !this.home.has(r.actor)) this.home.set(r.actor, node);
    const argv = srunArgv(this.command("srun"), {
      actor: r.actor, jobId: this.jobId, partition: this.o.partition, node, exclude: [...this.unusable],
      gpus: this.o.gpus?.[r.role] ?? 0, srunArgs: this.o.srunArgs ?? [], command: hostCommand(r.module),
    });
    return new SrunProcess(argv, srunEnv(r.env), this, r, this.jobId === undefined);
  }

  /** The actor's home: its role's node in `place` (checked against the candidates), else the one it first got. */
  private homeOf(r: LaunchRequest, nodes: readonly string[]): string | undefined {
    const placed = this.o.place?.[r.role];
    if (!placed) return this.home.get(r.actor);
    if (!nodes.includes(placed)) {
      const known = nodes.length ? `the candidate nodes are ${nodes.join(", ")}` : "there are no candidate nodes (set cluster.slurm.nodes, or run inside an allocation)";
      throw new Error(`cluster.slurm.place.${r.role} is ${placed}, which is not a node actors may be placed on: ${known}`);
    }
    return placed;
  }

  /** srun named the step and node: remember the node, tell the hook. */
  placed(p: SrunProcess): void {
    if (this.home.get(p.request.actor) === undefined) this.home.set(p.request.actor, p.node!);
    const { actor, role, rank, incarnation } = p.request;
    this.o.onPlaced?.({ actor, role, rank, incarnation, node: p.node!, handle: `${p.job}.${p.step}` });
  }

  nodeFailed(node: string): void {
    this.unusable.add(node);
  }

  scancel(args: readonly string[]): void {
    fireAndForget([this.command("scancel"), ...args], this.env);
  }

  /** What Slurm says of the step (squeue) and its usage (sstat, where accounting gathers it); best effort. */
  inspect(p: ActorProcess): Record<string, unknown> {
    if (!(p instanceof SrunProcess)) return {};
    const seen: Record<string, unknown> = { launcher: "slurm", job: p.job, step: p.step, node: p.node, srun_pid: p.pid };
    if (p.job === undefined || p.step === undefined) return { ...seen, squeue: "not started on a node yet" };
    const id = `${p.job}.${p.step}`;
    const line = (out: string | Error) => (out instanceof Error ? `unavailable: ${out.message}` : out.trim());
    seen.squeue = line(query([this.command("squeue"), "-h", `--steps=${id}`, "-o", "%i %j %M %N"], this.env, INSPECT_TIMEOUT_MS));
    seen.sstat = line(query([this.command("sstat"), "-n", "-P", "-j", id, "--format=JobID,AveCPU,MaxRSS,MaxVMSize"], this.env, INSPECT_TIMEOUT_MS));
    return seen;
  }
}

/** A launcher that starts each actor with srun (see the header for placement, environment and signals). */
export function slurmLauncher(options: SlurmLauncherOptions = {}): Launcher {
  return new SlurmLauncher(options);
}
