/**
 * A one-node Slurm cluster for tests: its own slurm.conf in a temporary folder (node `localhost`
 * with this machine's CPUs, one partition, no cgroups, state, spool and logs in the folder, its
 * own ports), `slurmctld` and `slurmd` in the foreground (-D) as children of the test process,
 * ready once `sinfo` shows the node idle. Authentication is `auth/none` where the installed
 * Slurm still has it, else munge with its own key and socket in the folder.
 *
 * Where Slurm cannot run here (not installed, not root), `startSlurm` says why and the caller
 * skips with that reason printed. Install: `apt-get install slurm-wlm munge` (Debian).
 *
 * @example
 * ```ts
 * const cluster = await startSlurm();
 * if ("skip" in cluster) console.log(`[Slurm tests skipped] ${cluster.skip}`);
 * else { process.env.SLURM_CONF = cluster.conf; ...; await cluster.stop(); }
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus } from "node:os";
import { join } from "node:path";
import { tempDir } from "./tmp.ts";

export interface SlurmCluster {
  /** Path of this cluster's slurm.conf: set SLURM_CONF to it for every Slurm command. */
  conf: string;
  dir: string;
  /** The node's name. */
  node: string;
  /** Environment for Slurm commands of this cluster: the process's, with SLURM_CONF set. */
  env: Record<string, string>;
  /** Runs a Slurm command of this cluster; its stdout (throws, with stderr, when it fails). */
  run(args: string[]): string;
  /** Cancels every job, waits for the queue to empty, stops the daemons. */
  stop(): Promise<void>;
}

const NODE = "localhost";
const READY_TIMEOUT_MS = 60_000;
const PLUGIN_DIRS = ["/usr/lib/x86_64-linux-gnu/slurm-wlm", "/usr/lib/aarch64-linux-gnu/slurm-wlm", "/usr/lib/slurm-wlm", "/usr/lib64/slurm", "/usr/lib/slurm"];

function which(command: string): string | undefined {
  const r = spawnSync("sh", ["-c", `command -v ${command}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** A TCP port free right now on loopback (the daemons bind it a moment later). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

const hasAuthNone = () => PLUGIN_DIRS.some((d) => existsSync(join(d, "auth_none.so")));

/** Why this machine cannot run the test cluster, or undefined when it can. */
function cannotRun(): string | undefined {
  const missing = ["slurmctld", "slurmd", "srun", "sinfo", "scancel", "squeue"].filter((c) => !which(c));
  if (missing.length) return `Slurm is not installed (no ${missing.join(", ")}); apt-get install slurm-wlm munge`;
  if (process.getuid?.() !== 0) return "slurmd must run as root to start jobs, and this test process is not root";
  if (!hasAuthNone() && !which("munged")) return "this Slurm has no auth/none plugin and munge is not installed (apt-get install munge)";
  return undefined;
}

function slurmConf(dir: string, ports: { ctld: number; d: number }, auth: string[]): string {
  return [
    "ClusterName=revenanttest",
    `SlurmctldHost=${NODE}(127.0.0.1)`,
    "SlurmUser=root",
    "SlurmdUser=root",
    ...auth,
    "ProctrackType=proctrack/linuxproc",
    "TaskPlugin=task/none",
    "MpiDefault=none",
    "SwitchType=switch/none",
    "JobAcctGatherType=jobacct_gather/none",
    "AccountingStorageType=accounting_storage/none",
    "SchedulerType=sched/builtin",
    "SelectType=select/cons_tres",
    "SelectTypeParameters=CR_CPU",
    "ReturnToService=2",
    // Fast teardown of cancelled steps; no waiting on idle sruns.
    "KillWait=2",
    "MinJobAge=2",
    "InactiveLimit=0",
    `SlurmctldPort=${ports.ctld}`,
    `SlurmdPort=${ports.d}`,
    `StateSaveLocation=${dir}/state`,
    `SlurmdSpoolDir=${dir}/spool`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd.log`,
    `NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus().length} State=UNKNOWN`,
    // Every actor is a job or step of one CPU; FORCE lets more actors than CPUs run at once.
    `PartitionName=test Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16`,
    "",
  ].join("\n");
}

/** munged with its own key and socket in `dir`; the slurm.conf lines that use it. */
async function startMunge(dir: string, children: ChildProcess[]): Promise<string[]> {
  const key = join(dir, "munge.key");
  writeFileSync(key, spawnSync("head", ["-c", "1024", "/dev/urandom"]).stdout);
  chmodSync(key, 0o400);
  const socket = join(dir, "munge.sock");
  const munged = spawn(which("munged")!, ["-F", "--force", `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${dir}/munged.pid`,
    `--log-file=${dir}/log/munged.log`, `--seed-file=${dir}/munge.seed`], { stdio: "ignore" });
  children.push(munged);
  await until(() => existsSync(socket), "munged's socket", munged);
  return ["AuthType=auth/munge", "CredType=cred/munge", `AuthInfo=socket=${socket}`];
}

/** Waits for `cond`, checking that `watched` children are still running; bounded. */
async function until(cond: () => boolean, what: string, ...watched: ChildProcess[]): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!cond()) {
    const dead = watched.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnfile} exited (${dead.exitCode ?? dead.signalCode}) before ${what}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function logTail(dir: string): string {
  const tail = (f: string) => (existsSync(f) ? readFileSync(f, "utf8").trim().split("\n").slice(-15).join("\n") : "(no log)");
  return `slurmctld.log:\n${tail(join(dir, "log/slurmctld.log"))}\nslurmd.log:\n${tail(join(dir, "log/slurmd.log"))}`;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Starts the cluster, or says why it cannot run here. `auth`: `auto` (auth/none where the
 * installed Slurm has it, else munge) or `munge` (to check that path where auth/none exists).
 */
export async function startSlurm(auth: "auto" | "munge" = "auto"): Promise<SlurmCluster | { skip: string }> {
  const why = cannotRun();
  if (why) return { skip: why };
  const dir = tempDir("revenant-slurm-");
  for (const sub of ["state", "spool", "log"]) mkdirSync(join(dir, sub), { recursive: true });
  const children: ChildProcess[] = [];
  const conf = join(dir, "slurm.conf");
  const env: Record<string, string> = { ...(process.env as Record<string, string>), SLURM_CONF: conf };
  for (const name of Object.keys(env)) if (/^(SLURM_|SRUN_|SALLOC_|SBATCH_)/.test(name) && name !== "SLURM_CONF") delete env[name];
  const run = (args: string[]) => {
    const r = spawnSync(args[0]!, args.slice(1), { env, encoding: "utf8", timeout: 30_000 });
    if (r.status !== 0) throw new Error(`${args.join(" ")} failed (${r.status ?? r.signal}): ${r.stderr || r.error?.message}`);
    return r.stdout;
  };
  const stop = async () => {
    spawnSync("scancel", ["--full", "--user=root"], { env, timeout: 10_000 });
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && spawnSync("squeue", ["-h"], { env, encoding: "utf8" }).stdout.trim()) await new Promise((r) => setTimeout(r, 200));
    for (const child of [...children].reverse()) await stopChild(child);
  };
  try {
    const authLines = auth === "auto" && hasAuthNone() ? ["AuthType=auth/none", "CredType=cred/none"] : await startMunge(dir, children);
    writeFileSync(conf, slurmConf(dir, { ctld: await freePort(), d: await freePort() }, authLines));
    const daemon = (cmd: string, args: string[]) => {
      const child = spawn(cmd, ["-D", ...args], { env, stdio: ["ignore", "ignore", "pipe"] });
      child.stderr!.resume(); // the logs are in the folder; keep the pipe drained
      children.push(child);
      return child;
    };
    const ctld = daemon("slurmctld", ["-i"]);
    const slurmd = daemon("slurmd", ["-N", NODE]);
    const idle = () => /^\S+\s+idle\s*$/m.test(spawnSync("sinfo", ["-h", "-N", "-o", "%N %T"], { env, encoding: "utf8", timeout: 10_000 }).stdout ?? "");
    await until(idle, `sinfo to show ${NODE} idle`, ctld, slurmd);
  } catch (e) {
    const detail = logTail(dir);
    await stop();
    return { skip: `the test Slurm cluster did not start: ${(e as Error).message}\n${detail}` };
  }
  return { conf, dir, node: NODE, env, run, stop };
}
