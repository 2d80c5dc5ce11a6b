/**
 * Slurm clusters for tests, with their own slurm.conf in a temporary folder (one partition, no
 * cgroups, state, spool and logs in the folder, their own ports), the daemons in the foreground
 * (-D) as children of the test process. Authentication is `auth/none` where the installed Slurm
 * still has it, else munge with its own key and socket in the folder.
 *
 * - `startSlurm()`: one node, `localhost`, with this machine's CPUs; ready once `sinfo` shows it
 *   idle.
 * - `startSlurmNodes()`: two nodes, `node1` and `node2`, each a network namespace of this machine
 *   (tests/helpers/netns.ts) joined to the root namespace by its own link: node1 10.231.1.2 (root
 *   side 10.231.1.1), node2 10.231.2.2 (root side 10.231.2.1). `slurmctld` runs in the root
 *   namespace as `SlurmctldHost=<this host's short name>(10.231.1.1)` (slurmctld accepts only its
 *   own host name there); one `slurmd -N nodeK` runs in each node's namespace, entered with
 *   `nsenter --net` (`ip netns exec` would remount /sys, and slurmd would find no cgroup
 *   mounts), with its spool, pid file and log named by node (%n). Jobs' processes run inside
 *   their node's namespace, so they reach the root side only over their node's link: real
 *   routed TCP. Every conversation has the root namespace at one end (srun and slurmctld run
 *   there, and Slurm's message fan-out, TreeWidth, is wider than two nodes, so no slurmd relays
 *   to the other): nothing is forwarded between the nodes, and net.ipv4.ip_forward is left as it
 *   is. `SlurmdTimeout` is short, so a node that stops answering is marked not responding (`*`),
 *   then down, within seconds; `ReturnToService=2` puts it back in service as soon as its
 *   slurmd registers again. `lose(node)` drops the node's traffic (nftables in its
 *   namespace) and SIGKILLs every process in it (slurmd, the steps and what they run): the
 *   machine is gone, and says nothing on its way out; `restore(node)` lets its traffic through,
 *   starts its slurmd again and waits for Slurm to call it usable.
 *
 * Where Slurm cannot run here (not installed, not root; for two nodes also no network namespaces
 * or nftables), the start functions say why and the caller skips with that reason printed.
 * Install: `apt-get install slurm-wlm munge nftables iproute2` (Debian).
 *
 * @example
 * ```ts
 * const cluster = await startSlurm();
 * if ("skip" in cluster) console.log(`[Slurm tests skipped] ${cluster.skip}`);
 * else { process.env.SLURM_CONF = cluster.conf; ...; await cluster.stop(); }
 *
 * const two = await startSlurmNodes();
 * if (!("skip" in two)) { ...; two.lose("node2"); ...; await two.restore("node2"); ...; await two.stop(); }
 * ```
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, hostname } from "node:os";
import { join } from "node:path";
import { isUsableState } from "../../runtime/core/supervisor/slurm_launcher.ts";
import { createNodesAt, netnsUnavailable, partitionUnavailable, type NetNode, type Nodes } from "./netns.ts";
import { tempDir } from "./tmp.ts";

interface SlurmBase {
  /** Path of this cluster's slurm.conf: set SLURM_CONF to it for every Slurm command. */
  conf: string;
  dir: string;
  /** Environment for Slurm commands of this cluster: the process's, with SLURM_CONF set. */
  env: Record<string, string>;
  /** Runs a Slurm command of this cluster; its stdout (throws, with stderr, when it fails). */
  run(args: string[]): string;
  /** Cancels every job, waits for the queue to empty, stops the daemons. */
  stop(): Promise<void>;
}

export interface SlurmCluster extends SlurmBase {
  /** The node's name. */
  node: string;
}

export interface SlurmNodes extends SlurmBase {
  /** The nodes' names, in slurm.conf's order: node1, node2. */
  nodes: readonly [string, string];
  /** The network: each node's namespace and addresses, by position in `nodes`. */
  net: Nodes;
  /** The root-side address of node1's link: the controller's, and where a coordinator listens. */
  coordinatorHost: string;
  /** The node's state as `sinfo -N -o %T` prints it (`idle`, `mixed*`, `down*`...). */
  state(node: string): string;
  /** Polls sinfo (bounded) until the node's state matches; the states seen, in order, without repeats. */
  waitForState(node: string, match: (state: string) => boolean, what: string): Promise<string[]>;
  /** The node is lost at once: its traffic dropped, then every process in it SIGKILLed (synchronous). */
  lose(node: string): void;
  /** The lost node comes back: traffic let through, slurmd started again; resolves once Slurm calls the node usable. */
  restore(node: string): Promise<void>;
}

const NODE = "localhost";
/** The two-node cluster's nodes: fixed names and addresses (slurm.conf names them). */
const TWO_NODES: readonly [NetNode, NetNode] = [1, 2].map((k) => ({
  name: `node${k}`,
  namespace: `rvnslurm-node${k}`,
  rootLink: `rvnslurm${k}`,
  rootAddress: `10.231.${k}.1`,
  address: `10.231.${k}.2`,
})) as [NetNode, NetNode];
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

interface ConfShape {
  /** `SlurmctldHost`'s name and address. */
  controller: { name: string; address: string };
  nodes: { name: string; address: string; cpus: number }[];
  /** Lines for this cluster alone (timers). */
  extra?: string[];
}

function slurmConf(dir: string, shape: ConfShape, ports: { ctld: number; d: number }, auth: string[]): string {
  const names = shape.nodes.map((n) => n.name).join(",");
  return [
    "ClusterName=revenanttest",
    `SlurmctldHost=${shape.controller.name}(${shape.controller.address})`,
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
    ...(shape.extra ?? []),
    `SlurmctldPort=${ports.ctld}`,
    `SlurmdPort=${ports.d}`,
    `StateSaveLocation=${dir}/state`,
    // %n: the node's name, so that several slurmd on this one machine keep apart.
    `SlurmdSpoolDir=${dir}/spool-%n`,
    `SlurmctldPidFile=${dir}/slurmctld.pid`,
    `SlurmdPidFile=${dir}/slurmd-%n.pid`,
    `SlurmctldLogFile=${dir}/log/slurmctld.log`,
    `SlurmdLogFile=${dir}/log/slurmd-%n.log`,
    ...shape.nodes.map((n) => `NodeName=${n.name} NodeAddr=${n.address} CPUs=${n.cpus} State=UNKNOWN`),
    // Every actor is a job or step of one CPU; FORCE lets more actors than CPUs run at once.
    `PartitionName=test Nodes=${names} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16`,
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
  const logs = existsSync(join(dir, "log")) ? readdirSync(join(dir, "log")).filter((f) => f.startsWith("slurm")).sort() : [];
  return logs.map((f) => `${f}:\n${tail(join(dir, "log", f))}`).join("\n");
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

/** A cluster's folder, environment, command runner and daemons, before any daemon starts. */
function prepare(prefix: string) {
  const dir = tempDir(prefix);
  for (const sub of ["state", "log"]) mkdirSync(join(dir, sub), { recursive: true });
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
  /** A daemon in the foreground: `argv` is its command, possibly behind a namespace prefix. */
  const daemon = (argv: string[]) => {
    const child = spawn(argv[0]!, [...argv.slice(1), "-D"], { env, stdio: ["ignore", "ignore", "pipe"] });
    child.stderr!.resume(); // the logs are in the folder; keep the pipe drained
    children.push(child);
    return child;
  };
  const writeConf = async (shape: ConfShape, auth: "auto" | "munge") => {
    const authLines = auth === "auto" && hasAuthNone() ? ["AuthType=auth/none", "CredType=cred/none"] : await startMunge(dir, children);
    writeFileSync(conf, slurmConf(dir, shape, { ctld: await freePort(), d: await freePort() }, authLines));
  };
  const states = () => parseStates(spawnSync("sinfo", ["-h", "-N", "-o", "%N %T"], { env, encoding: "utf8", timeout: 10_000 }).stdout ?? "");
  return { dir, conf, env, run, stop, daemon, writeConf, states };
}

function parseStates(text: string): Map<string, string> {
  return new Map(text.trim().split("\n").filter(Boolean).map((l) => l.trim().split(/\s+/) as [string, string]));
}

/**
 * Starts the one-node cluster, or says why it cannot run here. `auth`: `auto` (auth/none where
 * the installed Slurm has it, else munge) or `munge` (to check that path where auth/none exists).
 */
export async function startSlurm(auth: "auto" | "munge" = "auto"): Promise<SlurmCluster | { skip: string }> {
  const why = cannotRun();
  if (why) return { skip: why };
  const c = prepare("revenant-slurm-");
  try {
    await c.writeConf({ controller: { name: NODE, address: "127.0.0.1" }, nodes: [{ name: NODE, address: "127.0.0.1", cpus: cpus().length }] }, auth);
    const ctld = c.daemon(["slurmctld", "-i"]);
    const slurmd = c.daemon(["slurmd", "-N", NODE]);
    await until(() => c.states().get(NODE) === "idle", `sinfo to show ${NODE} idle`, ctld, slurmd);
  } catch (e) {
    const detail = logTail(c.dir);
    await c.stop();
    return { skip: `the test Slurm cluster did not start: ${(e as Error).message}\n${detail}` };
  }
  return { conf: c.conf, dir: c.dir, node: NODE, env: c.env, run: c.run, stop: c.stop };
}

/** Why the two-node cluster cannot run here, or undefined when it can. */
function cannotRunNodes(): string | undefined {
  return cannotRun() ?? netnsUnavailable() ?? partitionUnavailable() ?? (which("nsenter") ? undefined : "`nsenter` (util-linux) is not installed");
}

/**
 * Starts the two-node cluster (see the header), or says why it cannot run here. `stop()` also
 * removes the namespaces, their links and any nftables rules in them, whatever state the nodes
 * are in.
 */
export async function startSlurmNodes(): Promise<SlurmNodes | { skip: string }> {
  const why = cannotRunNodes();
  if (why) return { skip: why };
  // The folder first: nothing of the machine's is touched until the network is made, and from
  // then on every failure goes through stop(), which removes it again.
  const c = prepare("revenant-slurm2-");
  let net: Nodes;
  try {
    net = createNodesAt(TWO_NODES);
  } catch (e) {
    return { skip: (e as Error).message };
  }
  const byName = (name: string) => {
    const node = net.list.find((n) => n.name === name);
    if (!node) throw new Error(`no node ${name} in this cluster: ${net.list.map((n) => n.name).join(", ")}`);
    return node;
  };
  const slurmd = (node: NetNode) => c.daemon([...net.enter(node), "slurmd", "-N", node.name]);
  const usable = (name: string) => {
    const state = c.states().get(name);
    return state !== undefined && isUsableState(state);
  };
  const stop = async () => {
    try {
      await c.stop();
    } finally {
      net.destroy();
    }
  };
  const state = (name: string) => c.states().get(byName(name).name) ?? "(not listed by sinfo)";
  const [n1, n2] = net.list;
  try {
    await c.writeConf({
      controller: { name: hostname().split(".")[0]!, address: n1.rootAddress },
      nodes: net.list.map((n) => ({ name: n.name, address: n.address, cpus: cpus().length })),
      // A silent node is pinged every few seconds, flagged not responding (`*`) when a ping
      // finds no answer within MessageTimeout, and marked down SlurmdTimeout after its last
      // answer (Slurm's own ping cadence sets the floor: about 6 s and 12 s here).
      extra: ["SlurmdTimeout=5", "MessageTimeout=3"],
    }, "auto");
    const daemons = [c.daemon(["slurmctld", "-i"]), slurmd(n1), slurmd(n2)];
    await until(() => usable(n1.name) && usable(n2.name), "sinfo to show node1 and node2 usable", ...daemons);
  } catch (e) {
    const detail = logTail(c.dir);
    await stop();
    return { skip: `the two-node test Slurm cluster did not start: ${(e as Error).message}\n${detail}` };
  }
  return {
    conf: c.conf, dir: c.dir, env: c.env, run: c.run, stop, net, nodes: [n1.name, n2.name], coordinatorHost: n1.rootAddress,
    state,
    waitForState: async (name, match, what) => {
      const seen: string[] = [];
      await until(() => {
        const now = state(name);
        if (seen.at(-1) !== now) seen.push(now);
        return match(now);
      }, what);
      return seen;
    },
    lose: (name) => {
      const node = byName(name);
      // Traffic first: what the dying processes would send (a FIN, an RST) never leaves the node.
      net.partition(node);
      net.killAll(node);
    },
    restore: async (name) => {
      const node = byName(name);
      net.heal(node);
      const d = slurmd(node);
      await until(() => usable(node.name), `sinfo to show ${node.name} back in service`, d);
    },
  };
}
