/**
 * The supervisor's options as zod schemas, with their defaults and bounds: fault tolerance (the
 * reference's keys and Revenant's own) and the cluster section (launchers, transport, Slurm and
 * Kubernetes settings). The supervisor owns them; config/schema.ts composes them into the whole
 * configuration, and every message and the configuration reference come from these definitions.
 *
 * @example
 * ```ts
 * const ft = FaultToleranceSchema.parse({ max_restarts: 5 }); // ft.max_task_retries === 2
 * ```
 */
import { z } from "zod";
import { checkHost, parseHostPort } from "../ipc/transport.ts";

/**
 * Bounds shared by every section of the configuration: the configuration reference and every error message are
 * generated from the schema, so they always say what is enforced.
 *
 * Durations run from a timer's resolution (1 ms) to one week. The upper bound keeps every
 * timer far below 2^31−1 ms (24.8 days), past which setTimeout overflows and fires at once.
 */
export const DURATION_S = { min: 0.001, max: 604_800 } as const;
/** Steps, step intervals and restart/retry counts: more than a million is a typo, not a plan. */
export const MAX_COUNT = 1_000_000;

/** An integer in [min, max]. */
export const int = (min: number, max: number) => z.number().int().min(min).max(max);
/** −1 means "forever" for counts of restarts and retries. */
export const countOrForever = (dflt: number, what: string) =>
  int(-1, MAX_COUNT).default(dflt).describe(`${what}; -1 = unlimited, 0 = none`);
/** A duration in seconds within DURATION_S. */
export const seconds = (dflt: number, what: string) =>
  z.number().min(DURATION_S.min).max(DURATION_S.max).default(dflt).describe(`${what} (seconds)`);

/**
 * A cross-field rule `high > low` between two keys of one section. The issue sits on `high` and
 * names `low` in `params`, so config/load.ts can say where each of the two values came from.
 */
export function greaterThan<K extends string>(high: K, low: K, why: string) {
  return (v: Record<K, number>, ctx: z.RefinementCtx) => {
    if (v[high] > v[low]) return;
    ctx.addIssue({
      code: "custom",
      path: [high],
      message: `must be greater than ${low} = ${v[low]}: ${why}`,
      params: { than: low, thanValue: v[low], value: v[high], why },
    });
  };
}

/**
 * Fault tolerance. The first five keys are exactly the reference's
 * `FaultToleranceConfig(enable_fault_tolerance=True, max_restarts=3, max_task_retries=2,
 * enable_health_monitoring=True, health_check_interval=30.0)`; the rest tune how Revenant
 * detects hangs and paces restarts.
 */
export const FaultToleranceSchema = z.strictObject({
  enable_fault_tolerance: z.boolean().default(true)
    .describe("supervise actors; false fails the job on the first actor death"),
  max_restarts: countOrForever(3, "restarts allowed per actor over its life"),
  max_task_retries: countOrForever(2, "times a call lost to an actor death is retried"),
  enable_health_monitoring: z.boolean().default(true)
    .describe("run health probes and export actor_health/{role}"),
  health_check_interval: z.number().positive().max(MAX_COUNT).default(30.0)
    .describe("training steps between health probe rounds; below 1 means every step"),
  restart_strategy: z.enum(["one_for_one", "one_for_all"]).default("one_for_one")
    .describe("one_for_one restarts the dead rank alone; one_for_all restarts every rank of its group"),
  restart_backoff_initial_s: seconds(0.01, "delay before restarting an actor; doubles with each restart that made no progress (no call completed since the last)"),
  restart_backoff_max_s: seconds(5, "cap on the exponential restart delay"),
  restart_intensity: int(1, MAX_COUNT).default(10)
    .describe("more than this many restarts of one actor within restart_period_s fails the job"),
  restart_period_s: seconds(60, "window for restart_intensity"),
  call_deadline_s: seconds(600, "default deadline of one actor call; past it the actor is killed as hung"),
  ping_interval_s: seconds(1, "interval between liveness pings to each actor"),
  ping_timeout_s: seconds(10, "an actor that answers no ping for this long is killed as hung"),
  health_check_timeout_s: seconds(10, "time an actor has to answer a health probe"),
  shutdown_grace_s: seconds(5, "time between SIGTERM and SIGKILL when stopping an actor"),
  max_replay_s: seconds(0.1, "recovery budget: a stateful actor is snapshotted in memory whenever replaying its calls since the last snapshot would take longer"),
}).superRefine(greaterThan("ping_timeout_s", "ping_interval_s",
  "an actor answers one ping per interval, so a shorter timeout kills healthy actors; raise ping_timeout_s or lower ping_interval_s"));

const CLUSTER_LAUNCHERS = ["local", "slurm", "kubernetes"] as const;
/** The shipped roles by name: per-role GPU counts and home nodes. */
const CLUSTER_ROLES = ["actor_rollout", "critic", "ref_policy", "reward", "rollout"] as const;
/** srun options the Slurm launcher sets itself; a user value would break placement or the environment. */
export const SRUN_RESERVED = [
  "--export", "--nodelist", "-w", "--exclude", "-x", "--ntasks", "-n", "--nodes", "-N", "--jobid", "--overlap", "--gpus", "-G", "--job-name", "-J",
  "--partition", "-p", "--verbose", "-v", "--quiet", "-Q", "--output", "-o", "--error", "-e", "--input", "-i",
] as const;
/** A Kubernetes quantity (`500m`, `2`, `4Gi`); empty = none. */
const K8S_QUANTITY = /^$|^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** A Kubernetes label key=value, as in a nodeSelector. */
const K8S_LABEL = /^(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?=(?:[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const K8S_NAME = /^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** An address check from transport.ts as a zod refinement: its message names the key's value and what is allowed. */
function addressCheck(check: (v: string) => unknown, allowed: string) {
  return (v: string, ctx: z.RefinementCtx) => {
    if (v === "") return;
    try {
      check(v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: `${(e as Error).message}; allowed: ${allowed}` });
    }
  };
}

/** A string format as a refinement: a custom issue says what is allowed (a plain regex would only say "a string"). */
function matching(pattern: RegExp, allowed: string) {
  return (v: string, ctx: z.RefinementCtx) => {
    if (!pattern.test(v)) ctx.addIssue({ code: "custom", message: `expected ${allowed}, got ${JSON.stringify(v)}` });
  };
}

function srunArgCheck(arg: string, ctx: z.RefinementCtx): void {
  const name = arg.split("=")[0]!;
  if (!(SRUN_RESERVED as readonly string[]).includes(name)) return;
  ctx.addIssue({
    code: "custom",
    message: `${name} is set by the Slurm launcher (placement, environment, output); allowed: any other srun option, such as --mem=16G or --cpus-per-task=4 (the partition is cluster.slurm.partition, nodes cluster.slurm.nodes)`,
  });
}

const gpuCount = (role: string) => int(0, 64).default(0).describe(`GPUs for each ${role} actor (srun --gpus, or the pod's nvidia.com/gpu limit); 0 = none`);
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const nodeName = () => z.string().max(253).superRefine(matching(NODE_NAME, "a node name (letters, digits, _ . -)"));
const placeNode = (role: string) => z.string().max(253).superRefine(matching(new RegExp(`^$|${NODE_NAME.source}`), "a node name (letters, digits, _ . -) or empty"))
  .default("").describe(`home node of each ${role} actor, while Slurm calls it usable (one of cluster.slurm.nodes, or of the allocation); empty = actors spread over the nodes`);

export const ClusterSchema = z.strictObject({
  launcher: z.enum(CLUSTER_LAUNCHERS).default("local")
    .describe("how actors are started: local (child processes), slurm (srun, inside an allocation or as jobs of their own) or kubernetes (a pod each)"),
  transport: z.enum(["auto", "unix", "tcp"]).default("auto")
    .describe("how actors connect back: unix (this machine only), tcp, or auto (unix for the local launcher, tcp otherwise)"),
  listen: z.string().max(300).default("").superRefine(addressCheck(parseHostPort, "host:port, IPv6 in brackets ([::1]:7070), port 0 = any free port"))
    .describe("TCP address the coordinator listens on for actors (host:port, port 0 = any); empty = 127.0.0.1:0 with the local launcher, 0.0.0.0:0 otherwise"),
  advertise: z.string().max(253).default("")
    .superRefine(addressCheck((v) => {
      checkHost(v, "the advertised host");
      if (v === "0.0.0.0" || v === "::") throw new Error(`the advertised host must be one actors can connect to, not the wildcard ${v}`);
    }, "a host name or IP address of this machine that actors can reach"))
    .describe("host actors are told to connect to; empty = the listen host, or this machine's host name when that is a wildcard and actors run elsewhere"),
  tls_cert: z.string().max(4096).default("").describe("PEM certificate the coordinator presents to actors (TCP only; with tls_key); empty = no TLS"),
  tls_key: z.string().max(4096).default("").describe("PEM private key of tls_cert"),
  tls_ca: z.string().max(4096).default("").describe("PEM certificates actors trust to verify the coordinator; empty = tls_cert itself (self-signed)"),
  gpus: z.strictObject(Object.fromEntries(CLUSTER_ROLES.map((r) => [r, gpuCount(r)])) as Record<(typeof CLUSTER_ROLES)[number], ReturnType<typeof gpuCount>>).prefault({}),
  slurm: z.strictObject({
    partition: z.string().max(256).superRefine(matching(/^[A-Za-z0-9_.-]*$/, "a Slurm partition name (letters, digits, _ . -)")).default("")
      .describe("partition of the jobs srun makes outside an allocation; empty = the cluster's default (inside an allocation, the allocation's)"),
    nodes: z.array(nodeName()).max(4096).default([])
      .describe("nodes to place actors on, in order (actors spread over them, a lost node's actors move to the next); empty = the allocation's nodes, or Slurm's choice outside one"),
    place: z.strictObject(Object.fromEntries(CLUSTER_ROLES.map((r) => [r, placeNode(r)])) as Record<(typeof CLUSTER_ROLES)[number], ReturnType<typeof placeNode>>).prefault({}),
    srun_args: z.array(z.string().min(1).max(1024).superRefine(srunArgCheck)).max(64).default([])
      .describe("extra srun options for every actor, e.g. [--mem=16G, --cpus-per-task=4]"),
  }).prefault({}),
  kubernetes: z.strictObject({
    image: z.string().max(1024).default("").describe("container image of actor pods (the coordinator's own image: same paths); needed by the kubernetes launcher"),
    namespace: z.string().max(63).superRefine(matching(K8S_NAME, "a Kubernetes namespace name (lowercase letters, digits, -)")).default("")
      .describe("namespace of actor pods; empty = the coordinator pod's own"),
    api_server: z.string().max(1024).superRefine(matching(/^$|^https?:\/\/\S+$/, "an http(s) URL such as https://kubernetes.default.svc")).default("")
      .describe("Kubernetes API server URL; empty = in-cluster (KUBERNETES_SERVICE_HOST and _PORT)"),
    token_file: z.string().max(4096).default("").describe("bearer token file for the API server; empty = the pod's service account token"),
    service_account: z.string().max(253).superRefine(matching(K8S_NAME, "a Kubernetes service account name (lowercase letters, digits, -)")).default("")
      .describe("service account of actor pods; empty = the namespace's default"),
    node_selector: z.array(z.string().max(317).superRefine(matching(K8S_LABEL, "a label key=value, e.g. nvidia.com/gpu.present=true"))).max(64).default([])
      .describe("labels an actor pod's node must carry, as key=value"),
    cpu: z.string().max(32).superRefine(matching(K8S_QUANTITY, "a Kubernetes quantity such as 500m or 2")).default("").describe("CPU request and limit of each actor pod; empty = none"),
    memory: z.string().max(32).superRefine(matching(K8S_QUANTITY, "a Kubernetes quantity such as 4Gi")).default("").describe("memory request and limit of each actor pod; empty = none"),
  }).prefault({}),
}).superRefine(clusterRules);

type ClusterShape = {
  launcher: (typeof CLUSTER_LAUNCHERS)[number];
  transport: "auto" | "unix" | "tcp";
  listen: string;
  advertise: string;
  tls_cert: string;
  tls_key: string;
  tls_ca: string;
  kubernetes: { image: string };
  slurm: { nodes: string[]; place: Record<string, string> };
};

/** The port of a listen address; 0 when empty, undefined when unreadable (its own issue says why). */
function listenPort(listen: string): number | undefined {
  try {
    return listen === "" ? 0 : parseHostPort(listen).port;
  } catch {
    return undefined;
  }
}

/** Rules between the keys of `cluster`: each issue names the key to change and what it may be. */
function clusterRules(c: ClusterShape, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: "custom", path, message });
  const tcp = c.transport === "tcp" || (c.transport === "auto" && c.launcher !== "local");
  if (c.transport === "unix" && c.launcher !== "local") {
    issue(["transport"], `unix reaches actors on this machine only, and the ${c.launcher} launcher starts them elsewhere; allowed with it: tcp or auto`);
  }
  const tcpOnly = (["listen", "advertise", "tls_cert", "tls_key", "tls_ca"] as const).find((k) => c[k] !== "");
  if (!tcp && tcpOnly) {
    issue([tcpOnly], "is a TCP setting, and actors use the Unix socket here; set cluster.transport to tcp (or a launcher other than local)");
  }
  if (c.tls_cert && !c.tls_key) issue(["tls_key"], "is needed with tls_cert: the private key of that certificate");
  if (c.tls_key && !c.tls_cert) issue(["tls_cert"], "is needed with tls_key: the certificate that key belongs to");
  const nodes = c.slurm.nodes;
  for (const [role, node] of Object.entries(c.slurm.place)) {
    if (node && nodes.length > 0 && !nodes.includes(node)) issue(["slurm", "place", role], `${node} is not in cluster.slurm.nodes; allowed: ${nodes.join(", ")}`);
  }
  if (c.launcher === "kubernetes") {
    if (!c.kubernetes.image) issue(["kubernetes", "image"], "is needed by the kubernetes launcher: the image actor pods run (the coordinator's own)");
    if (listenPort(c.listen) === 0) {
      issue(["listen"], "needs a fixed port with the kubernetes launcher (the port the coordinator's Service forwards to actors), e.g. 0.0.0.0:7070; port 0 is any free port");
    }
  }
}

export type FaultTolerance = z.output<typeof FaultToleranceSchema>;
export type Cluster = z.output<typeof ClusterSchema>;
