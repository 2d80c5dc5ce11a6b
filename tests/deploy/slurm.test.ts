/**
 * The Slurm launcher: its pure parts (srun's command line and lines, node states, placement);
 * placement across a node failure, with stand-in Slurm commands (runs everywhere); and on a real
 * one-node Slurm cluster (tests/helpers/slurm.ts; skipped, saying why, where Slurm cannot run):
 * a training job through srun ends with the local launcher's weights, a step killed with scancel
 * is restarted through srun and the job goes on, and actors run as steps of an allocation. Then
 * the `cluster:` config section's errors and its mapping to Supervisor options.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { ConfigError, resolveConfig } from "../../config/index.ts";
import { killActor } from "../../runtime/core/chaos.ts";
import type { RuntimeEvent } from "../../runtime/core/metrics/events.ts";
import { clusterOptions, clusterTransport } from "../../runtime/core/supervisor/cluster.ts";
import { unwrapStatus } from "../../runtime/core/supervisor/command_process.ts";
import { localLauncher } from "../../runtime/core/supervisor/launcher.ts";
import {
  chooseNode, isSrunChatter, isUsableState, parseNodeStates, parseSrunLine, slurmLauncher, srunArgv, srunEnv,
} from "../../runtime/core/supervisor/slurm_launcher.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { fit, type FitResult } from "../../runtime/rl/trainer/trainer.ts";
import { harness } from "../helpers/harness.ts";
import { startSlurm, type SlurmCluster } from "../helpers/slurm.ts";
import { waitFor } from "../helpers/supervision.ts";
import { tempDir } from "../helpers/tmp.ts";

const TCP = { kind: "tcp", host: "127.0.0.1", port: 0 } as const;
const placedOf = (sup: Supervisor, actor: string) => sup.events.events.filter((e) => e.type === "placed" && e.actor === actor);

describe("srun's command line, lines and node states", () => {
  test("a job of its own, or a step of the allocation (CPU actors overlap, GPU actors get their own devices)", () => {
    const base = { actor: "critic", gpus: 0, srunArgs: ["--mem=1G"], command: ["/bin/bun", "/app/host.ts"] };
    expect(srunArgv("srun", { ...base, partition: "cpu", node: "n1" })).toEqual([
      "srun", "--verbose", "--nodes=1", "--ntasks=1", "--export=ALL", "--job-name=revenant.critic", "--partition=cpu", "--nodelist=n1",
      "--mem=1G", "--", "/bin/bun", "/app/host.ts",
    ]);
    const step = srunArgv("srun", { ...base, jobId: "42", partition: "ignored", exclude: ["n2"], gpus: 2 });
    expect(step).toContain("--jobid=42");
    expect(step).toContain("--exact");
    expect(step).toContain("--gpus=2");
    expect(step).toContain("--exclude=n2");
    expect(step.some((a) => a.startsWith("--partition"))).toBe(false);
    expect(srunArgv("srun", { ...base, jobId: "42" })).toContain("--overlap");
  });

  test("srun's environment is the actor's without the coordinator's Slurm input variables", () => {
    const env = srunEnv({ PATH: "/bin", SLURM_CONF: "/etc/slurm.conf", SLURM_NTASKS: "8", SLURM_EXPORT_ENV: "NONE", SBATCH_PARTITION: "x", REVENANT_ACTOR_SPEC: "{}" });
    expect(env).toEqual({ PATH: "/bin", SLURM_CONF: "/etc/slurm.conf", REVENANT_ACTOR_SPEC: "{}" });
  });

  test("the step, the job and failed nodes are read from srun's lines; its chatter is kept out of the actor's output", () => {
    expect(parseSrunLine("srun: launching StepId=5.0 on host node-3, 1 tasks: 0")).toEqual({ kind: "step", job: "5", step: "0", node: "node-3" });
    expect(parseSrunLine("srun: launching 5.1 on host n1, 1 tasks: 0")).toEqual({ kind: "step", job: "5", step: "1", node: "n1" });
    expect(parseSrunLine("srun: jobid 7: nodes(1):`localhost', cpu counts: 1(x1)")).toEqual({ kind: "job", job: "7" });
    expect(parseSrunLine("srun: job 8 queued and waiting for resources")).toEqual({ kind: "job", job: "8" });
    expect(parseSrunLine("srun: error: Node failure on gpu-12")).toEqual({ kind: "node_failed", node: "gpu-12" });
    expect(parseSrunLine("srun: error: Task launch for StepId=9.0 failed on node gpu-4: Communication connection failure")).toEqual({ kind: "node_failed", node: "gpu-4" });
    expect(parseSrunLine("hello from the actor")).toBeUndefined();
    for (const chatter of ["srun: defined options", "srun: job-name            : revenant.c", "srun: launching StepId=5.0 on host h, 1 tasks: 0",
      "srun: launch/slurm: _task_start: Node localhost, 1 tasks started", "srun: jobid 3: nodes(1):`localhost', cpu counts: 1(x1)"]) {
      expect({ chatter, hidden: isSrunChatter(chatter) }).toEqual({ chatter, hidden: true });
    }
    for (const kept of ["srun: error: localhost: task 0: Killed", "srun: Force Terminated StepId=1.0", "actor says srun: hi"]) {
      expect({ kept, hidden: isSrunChatter(kept) }).toEqual({ kept, hidden: false });
    }
  });

  test("node states: down, drained, failed or not responding (`*`) are unusable", () => {
    const states = parseNodeStates("n1 idle\nn2 down*\nn3 mixed\nn4 drained\nn5 idle*\nn6 allocated\n");
    expect([...states].filter(([, s]) => isUsableState(s)).map(([n]) => n)).toEqual(["n1", "n3", "n6"]);
  });

  test("srun's 128+n exit code is read as signal n", () => {
    expect(unwrapStatus(137, null)).toEqual({ code: null, signal: "SIGKILL" });
    expect(unwrapStatus(70, null)).toEqual({ code: 70, signal: null });
    expect(unwrapStatus(null, "SIGTERM")).toEqual({ code: null, signal: "SIGTERM" });
  });

  test("placement: actors spread in start order, keep their node, and move to the next usable one when it is gone", () => {
    const nodes = ["a", "b", "c"];
    expect([0, 1, 2, 3].map((i) => chooseNode(nodes, new Set(), undefined, i))).toEqual(["a", "b", "c", "a"]);
    expect(chooseNode(nodes, new Set(["a"]), "b", 0)).toBe("b");
    expect(chooseNode(nodes, new Set(["b"]), "b", 1)).toBe("c");
    expect(chooseNode(nodes, new Set(["b", "c"]), "b", 1)).toBe("a");
    expect(chooseNode([], new Set(["x"]), undefined, 0)).toBeUndefined();
    expect(() => chooseNode(["a", "b"], new Set(["a", "b"]), "a", 0)).toThrow("no Slurm node to start on: a, b are all down, drained or failed");
  });
});

/**
 * Stand-in srun, sinfo and scancel: srun fails with a node failure on a node listed in
 * `failed-nodes`, else names a step and runs the actor in its place; sinfo reports nodeA and
 * nodeB, down when listed, else idle; scancel signals a step's process. Each logs its arguments.
 */
function fakeSlurm(dir: string): Record<"srun" | "sinfo" | "scancel", string> {
  const script = (name: string, body: string) => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/bash\necho "${name} $*" >> ${dir}/calls.log\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };
  writeFileSync(join(dir, "failed-nodes"), "");
  writeFileSync(join(dir, "step"), "0");
  return {
    srun: script("srun", `node=""
while [ "$1" != "--" ]; do case "$1" in --nodelist=*) node="\${1#--nodelist=}";; esac; shift; done; shift
if grep -qx "$node" ${dir}/failed-nodes; then echo "srun: error: Node failure on $node" >&2; exit 1; fi
step=$(( $(cat ${dir}/step) + 1 )); echo $step > ${dir}/step
echo $$ > ${dir}/step-77.$step.pid
echo "srun: launching StepId=77.$step on host $node, 1 tasks: 0" >&2
exec "$@"`),
    sinfo: script("sinfo", `for n in nodeA nodeB; do if grep -qx "$n" ${dir}/failed-nodes; then echo "$n down*"; else echo "$n idle"; fi; done`),
    scancel: script("scancel", `sig=KILL; for a in "$@"; do case "$a" in --signal=*) sig="\${a#--signal=}";; *) step="$a";; esac; done
kill -$sig $(cat ${dir}/step-$step.pid)`),
  };
}

describe("placement across a node failure (stand-in Slurm commands)", () => {
  test("a rank whose node failed is restarted on the next node; SIGKILL reaches its step through scancel", async () => {
    const dir = tempDir("revenant-fake-slurm-");
    const commands = fakeSlurm(dir);
    writeFileSync(join(dir, "failed-nodes"), "nodeA\n");
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 }, {
      transport: TCP,
      launcher: slurmLauncher({ nodes: ["nodeA", "nodeB"], commands, env: { PATH: process.env.PATH }, onPlaced: (p) => sup.events.emit({ type: "placed", ...p }) }),
    });
    await sup.start([{ id: "c", role: "counter" }]);
    const actor = sup.actor("c");
    expect(await actor.call("add", [2])).toBe(2);
    // The first start, on nodeA, met a node failure; sinfo then called nodeA down: nodeB it is.
    const deaths = sup.events.events.filter((e) => e.type === "death");
    expect(deaths.map((e) => [e.cause, e.code])).toEqual([["exit", 1]]);
    expect(placedOf(sup, "c").map((e) => [e.incarnation, e.node, e.handle])).toEqual([[2, "nodeB", "77.1"]]);
    const calls = readFileSync(join(dir, "calls.log"), "utf8").split("\n");
    expect(calls.filter((l) => l.startsWith("srun")).map((l) => /--nodelist=(\S+)/.exec(l)?.[1])).toEqual(["nodeA", "nodeB"]);
    expect(calls.filter((l) => l.startsWith("sinfo"))).toEqual(["sinfo -h -N -o %N %T --nodes=nodeA,nodeB"]);

    // A kill: srun cannot forward SIGKILL, so it goes to the step with scancel.
    killActor(actor);
    await waitFor(() => sup.events.count("restart") === 2, "the restart after the kill");
    expect(readFileSync(join(dir, "calls.log"), "utf8")).toContain("scancel --signal=KILL 77.1");
    expect(sup.events.events.filter((e) => e.type === "death").at(-1)).toMatchObject({ signal: "SIGKILL" });
    expect(placedOf(sup, "c").at(-1)).toMatchObject({ incarnation: 3, node: "nodeB" });
    expect(await actor.call("add", [1])).toBe(3);
  });

  test("a role's home node (place): left while it is down, gone back to at the next restart once sinfo calls it usable", async () => {
    const dir = tempDir("revenant-fake-slurm-");
    const commands = fakeSlurm(dir);
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 }, {
      transport: TCP,
      launcher: slurmLauncher({
        nodes: ["nodeA", "nodeB"], place: { counter: "nodeB" }, commands, env: { PATH: process.env.PATH },
        onPlaced: (p) => sup.events.emit({ type: "placed", ...p }),
      }),
    });
    await sup.start([{ id: "c", role: "counter" }, { id: "d", role: "counter" }]);
    const [c, d] = [sup.actor("c"), sup.actor("d")];
    expect(await c.call("add", [2])).toBe(2);
    // Both actors of the role start on its home, whatever their start order.
    expect([...placedOf(sup, "c"), ...placedOf(sup, "d")].map((e) => e.node)).toEqual(["nodeB", "nodeB"]);

    writeFileSync(join(dir, "failed-nodes"), "nodeB\n");
    killActor(c);
    await waitFor(() => sup.events.count("restart") === 1, "the restart while nodeB is down");
    expect(placedOf(sup, "c").at(-1)).toMatchObject({ incarnation: 2, node: "nodeA" });

    writeFileSync(join(dir, "failed-nodes"), "");
    killActor(c);
    await waitFor(() => sup.events.count("restart") === 2, "the restart once nodeB is back");
    expect(placedOf(sup, "c").map((e) => [e.incarnation, e.node])).toEqual([[1, "nodeB"], [2, "nodeA"], [3, "nodeB"]]);
    // State went along on every move; the other actor, never dead, never moved.
    expect(await c.call("add", [1])).toBe(3);
    expect(placedOf(sup, "d").map((e) => e.node)).toEqual(["nodeB"]);
    expect(await d.call("add", [5])).toBe(5);
  });

  test("a home node that is not a candidate is refused, naming the key and the candidates", () => {
    const launcher = slurmLauncher({ nodes: ["n1", "n2"], place: { critic: "n9" }, commands: { srun: "/bin/false" }, env: {} });
    const request = { actor: "critic", role: "critic", rank: 0, incarnation: 1, module: "host.ts", env: {} };
    expect(() => launcher.launch(request)).toThrow("cluster.slurm.place.critic is n9, which is not a node actors may be placed on: the candidate nodes are n1, n2");
    const outside = slurmLauncher({ place: { critic: "n1" }, env: {} });
    expect(() => outside.launch(request)).toThrow("there are no candidate nodes (set cluster.slurm.nodes, or run inside an allocation)");
  });
});

// ---- a real Slurm cluster ------------------------------------------------------------------

// Started before the tests are defined, so that they can be skipped, with the reason, when it cannot run.
const started = await startSlurm();
const cluster: SlurmCluster | undefined = "skip" in started ? undefined : started;
const skip = "skip" in started ? started.skip : undefined;
if (skip) console.log(`[Slurm cluster tests skipped] ${skip}`);
// Every srun the coordinator starts (in its actors' environment) talks to this cluster.
if (cluster) process.env.SLURM_CONF = cluster.conf;
afterAll(async () => {
  delete process.env.SLURM_CONF;
  await cluster?.stop();
}, 90_000);

const quiet = () => {};

function jobConfig(runDir: string, extra: string[] = []) {
  return resolveConfig({
    file: null, env: {},
    args: [
      `trainer.run_dir=${runDir}`, "trainer.total_steps=4", "trainer.val_interval=2", "checkpoint.interval=2", "trainer.seed=7",
      "data.train_size=64", "data.val_size=16", "data.train_batch_size=8",
      "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8",
      "fault_tolerance.restart_backoff_initial_s=0.005", "fault_tolerance.max_restarts=-1", "fault_tolerance.max_task_retries=-1", ...extra,
    ],
  }).config;
}

async function runJob(id: string, extra: string[], onStep?: (step: number, sup: Supervisor) => void): Promise<{ result: FitResult; events: RuntimeEvent[] }> {
  const config = jobConfig(tempDir("revenant-slurm-job-"), extra);
  let sup: Supervisor | undefined;
  const result = await fit({
    config, job: createJob(config, id), output: quiet, onNote: quiet, onSupervisor: (s) => (sup = s), onStep: (step) => onStep?.(step, sup!),
  });
  return { result, events: sup!.events.events };
}

const SLURM = ["cluster.launcher=slurm", "cluster.listen=127.0.0.1:0"];

describe("on a one-node Slurm cluster", () => {
  let baseline: FitResult | undefined;
  const local = async () => (baseline ??= (await runJob("local", [])).result);

  test.skipIf(skip !== undefined)("a training job through srun ends with the same weights as with the local launcher", async () => {
    const { result, events } = await runJob("slurm", SLURM);
    expect(result.weightsSha256).toBe((await local()).weightsSha256);
    expect(result.failures).toBe(0);
    // Every actor was placed, on the cluster's node, as a job of its own.
    const placed = events.filter((e) => e.type === "placed");
    expect(placed.map((e) => e.actor).sort()).toEqual(["actor_rollout", "critic", "ref_policy"]);
    for (const e of placed) expect(e).toMatchObject({ node: cluster!.node, incarnation: 1, handle: expect.stringMatching(/^\d+\.0$/) });
  }, 180_000);

  test.skipIf(skip !== undefined)("a step cancelled with scancel --signal=KILL is restarted through srun, and the job goes on to the same weights", async () => {
    let killed: string | undefined;
    const { result, events } = await runJob("slurm-kill", SLURM, (step, sup) => {
      if (step !== 2) return;
      killed = placedOf(sup, "critic").at(-1)!.handle as string;
      cluster!.run(["scancel", "--signal=KILL", killed]);
    });
    expect(killed).toMatch(/^\d+\.0$/);
    expect(result.weightsSha256).toBe((await local()).weightsSha256);
    expect(result.restarts).toBeGreaterThanOrEqual(1);
    const critic = events.filter((e) => e.actor === "critic");
    expect(critic.find((e) => e.type === "death")).toMatchObject({ incarnation: 1, signal: "SIGKILL" });
    expect(critic.filter((e) => e.type === "placed").map((e) => [e.incarnation, e.node])).toEqual([[1, cluster!.node], [2, cluster!.node]]);
  }, 180_000);

  test.skipIf(skip !== undefined)("inside an allocation, actors are steps of it; a killed one is restarted as a new step, its state restored", async () => {
    const alloc = cluster!.run(["sbatch", "--parsable", "--no-kill", "--wrap=sleep 600", `--output=${cluster!.dir}/alloc.out`]).trim().split(";")[0]!;
    const state = () => cluster!.run(["squeue", "-h", "-j", alloc, "-o", "%T"]).trim();
    await waitFor(() => state() === "RUNNING", `allocation ${alloc} to run`, 60_000);
    const env = { ...cluster!.env, SLURM_JOB_ID: alloc, SLURM_JOB_NODELIST: cluster!.node };
    const { sup } = harness({ max_restarts: -1, max_task_retries: -1 }, {
      transport: TCP, startTimeoutS: 60,
      launcher: slurmLauncher({ env, onPlaced: (p) => sup.events.emit({ type: "placed", ...p }) }),
    });
    await sup.start([{ id: "c", role: "counter", ranks: 2 }]);
    const [a, b] = sup.group("c");
    expect(await a!.call("add", [5])).toBe(5);
    for (const e of sup.events.events.filter((e) => e.type === "placed")) expect(e.handle).toStartWith(`${alloc}.`);
    killActor(a!);
    await waitFor(() => sup.events.count("restart") === 1, "the restart", 60_000);
    expect(await a!.call("add", [1])).toBe(6);
    expect(await b!.call("add", [1])).toBe(1);
    const steps = placedOf(sup, "c/0").map((e) => e.handle);
    expect(steps).toHaveLength(2);
    expect(new Set(steps).size).toBe(2);
    await sup.shutdown();
    cluster!.run(["scancel", alloc]);
  }, 180_000);
});

// ---- deploy/slurm/train.sbatch -------------------------------------------------------------

const REPO = join(import.meta.dir, "..", "..");

test.each(["train.sbatch", "train-gpu.sbatch"])("%s is valid bash, keeps its allocation through a node failure, and its settings resolve", (script) => {
  const path = join(REPO, "deploy", "slurm", script);
  const text = readFileSync(path, "utf8");
  expect(spawnSync("bash", ["-n", path]).status).toBe(0);
  expect(text).toMatch(/^#SBATCH --no-kill$/m);
  const command = text.slice(text.indexOf("exec bun run train")).split("\n").map((l) => l.trim().replace(/\\$/, "").trim());
  const args = command.slice(1).filter((a) => a && a !== `"$@"`).map((a) => a.replace(`"$(hostname)"`, "node1"));
  const { config } = resolveConfig({ file: null, env: {}, args });
  expect(clusterTransport(config.cluster)).toEqual({ kind: "tcp", host: "0.0.0.0", port: 0, advertise: "node1" });
  expect(config.cluster.launcher).toBe("slurm");
  // The CPU script asks for no GPU anywhere; the GPU one for GPUs and CUDA devices.
  const gpu = script === "train-gpu.sbatch";
  expect(/--gpus|gres/.test(text)).toBe(gpu);
  expect(config.worker.actor.device).toBe(gpu ? "cuda" : "auto");
});

test.skipIf(skip !== undefined)("deploy/slurm/train.sbatch runs unmodified on a CPU node: a job trains to its end", async () => {
  const runDir = tempDir("revenant-sbatch-");
  const out = join(runDir, "sbatch.out");
  const submitted = spawnSync("sbatch", [
    "--parsable", `--output=${out}`, "deploy/slurm/train.sbatch", // the script as shipped; only its log's place is chosen
    `trainer.run_dir=${runDir}`, "trainer.total_steps=2", "trainer.val_interval=2", "data.train_size=64", "data.val_size=16",
    "data.train_batch_size=8", "worker.actor.ppo_mini_batch_size=8", "worker.critic.ppo_mini_batch_size=8",
  ], { cwd: REPO, env: cluster!.env, encoding: "utf8" });
  expect(submitted.stderr).toBe("");
  const job = submitted.stdout.trim().split(";")[0]!;
  await waitFor(() => cluster!.run(["squeue", "-h", "-j", job, "-o", "%T"]).trim() === "", `batch job ${job} to end`, 170_000);
  const log = readFileSync(out, "utf8");
  const jobs = readdirSync(runDir).filter((n) => existsSync(join(runDir, n, "summary.json")));
  if (jobs.length !== 1) throw new Error(`no finished job in ${runDir}; the batch log:\n${log}`);
  expect(JSON.parse(readFileSync(join(runDir, jobs[0]!, "summary.json"), "utf8")).steps).toBe(2);
}, 180_000);

// ---- the `cluster:` config section ---------------------------------------------------------

describe("the cluster config section", () => {
  const problems = (args: string[]) => {
    try {
      resolveConfig({ file: null, env: {}, args });
    } catch (e) {
      if (e instanceof ConfigError) return e.problems.map((p) => `${p.path}: ${p.message}`);
      throw e;
    }
    throw new Error(`accepted ${args.join(" ")}`);
  };

  test("every bad value is refused naming the key and what is allowed", () => {
    const cases: [string[], string][] = [
      [["cluster.launcher=pbs"], "cluster.launcher: expected one of: local, slurm, kubernetes"],
      [["cluster.transport=udp"], "cluster.transport: expected one of: auto, unix, tcp"],
      [["cluster.launcher=slurm", "cluster.transport=unix"], "cluster.transport: unix reaches actors on this machine only, and the slurm launcher starts them elsewhere; allowed with it: tcp or auto"],
      [["cluster.transport=tcp", "cluster.listen=localhost"], `cluster.listen: address "localhost" must be host:port, with an IPv6 address in brackets ([::1]:7070); allowed: host:port`],
      [["cluster.transport=tcp", "cluster.listen=[::1]:70000"], `cluster.listen: address "[::1]:70000": port must be an integer from 0 to 65535 (0: any free port), got 70000`],
      [["cluster.transport=tcp", "cluster.advertise=0.0.0.0"], "cluster.advertise: the advertised host must be one actors can connect to, not the wildcard 0.0.0.0"],
      [["cluster.transport=tcp", "cluster.advertise=a host"], `cluster.advertise: the advertised host must be an IP address or host name (IPv6 without brackets), got "a host"`],
      [["cluster.listen=0.0.0.0:7070"], "cluster.listen: is a TCP setting, and actors use the Unix socket here; set cluster.transport to tcp"],
      [["cluster.transport=tcp", "cluster.tls_cert=c.pem"], "cluster.tls_key: is needed with tls_cert"],
      [["cluster.transport=tcp", "cluster.tls_key=c.key"], "cluster.tls_cert: is needed with tls_key"],
      [["cluster.gpus.critic=-1"], "cluster.gpus.critic: expected an integer ≥ 0 and ≤ 64"],
      [["cluster.gpus.actor=1"], "cluster.gpus.actor: unknown key; allowed keys here: actor_rollout, critic, ref_policy, reward"],
      [["cluster.slurm.srun_args=[--export=NONE]"], "cluster.slurm.srun_args[0]: --export is set by the Slurm launcher (placement, environment, output); allowed: any other srun option"],
      [["cluster.slurm.srun_args=[-w, n1]"], "cluster.slurm.srun_args[0]: -w is set by the Slurm launcher"],
      [["cluster.slurm.nodes=[node 1]"], "cluster.slurm.nodes[0]: expected a node name (letters, digits, _ . -)"],
      [["cluster.slurm.partition=gpu;rm"], "cluster.slurm.partition: expected a Slurm partition name"],
      [["cluster.slurm.nodes=[a, b]", "cluster.slurm.place.critic=c"], "cluster.slurm.place.critic: c is not in cluster.slurm.nodes; allowed: a, b"],
      [["cluster.slurm.place.critic=node 2"], "cluster.slurm.place.critic: expected a node name (letters, digits, _ . -) or empty"],
      [["cluster.slurm.place.actor=n1"], "cluster.slurm.place.actor: unknown key; allowed keys here: actor_rollout, critic, ref_policy, reward, rollout"],
      [["cluster.launcher=kubernetes", "cluster.listen=0.0.0.0:7070"], "cluster.kubernetes.image: is needed by the kubernetes launcher"],
      [["cluster.launcher=kubernetes", "cluster.kubernetes.image=r:1"], "cluster.listen: needs a fixed port with the kubernetes launcher"],
      [["cluster.kubernetes.node_selector=[gpu]"], "cluster.kubernetes.node_selector[0]: expected a label key=value"],
      [["cluster.kubernetes.memory=4 GB"], "cluster.kubernetes.memory: expected a Kubernetes quantity such as 4Gi, got \"4 GB\""],
      [["cluster.kubernetes.api_server=kube:6443"], "cluster.kubernetes.api_server: expected an http(s) URL"],
    ];
    for (const [args, message] of cases) {
      const got = problems(args);
      expect({ args, found: got.some((p) => p.startsWith(message)) ? message : got }).toEqual({ args, found: message });
    }
  });

  test("the defaults give the Supervisor's own defaults: the Unix socket and the local launcher", () => {
    const c = resolveConfig({ file: null, env: {} }).config.cluster;
    expect(clusterOptions(c, { owner: "j" })).toEqual({ transport: { kind: "unix" }, launcher: localLauncher });
  });

  test("slurm means TCP; a wildcard listen address is advertised as this machine's name; TLS files pass through", () => {
    const cluster = (args: string[]) => resolveConfig({ file: null, env: {}, args }).config.cluster;
    expect(clusterTransport(cluster(["cluster.launcher=slurm"]))).toEqual({ kind: "tcp", host: "0.0.0.0", port: 0, advertise: hostname() });
    expect(clusterTransport(cluster(["cluster.launcher=slurm", "cluster.listen=10.1.2.3:7070"]))).toEqual({ kind: "tcp", host: "10.1.2.3", port: 7070 });
    expect(clusterTransport(cluster(["cluster.transport=tcp"]))).toEqual({ kind: "tcp", host: "127.0.0.1", port: 0 });
    expect(clusterTransport(cluster(["cluster.launcher=slurm", "cluster.advertise=login1", "cluster.tls_cert=c.pem", "cluster.tls_key=c.key", "cluster.tls_ca=ca.pem"])))
      .toEqual({ kind: "tcp", host: "0.0.0.0", port: 0, advertise: "login1", tls: { certPath: "c.pem", keyPath: "c.key", caPath: "ca.pem" } });
    expect(clusterOptions(cluster(["cluster.launcher=slurm"]), { owner: "j" }).launcher.name).toBe("slurm");
  });
});
