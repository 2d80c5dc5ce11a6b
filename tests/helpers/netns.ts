/**
 * Two "nodes" on one machine: Linux network namespaces, each joined to the root namespace by a
 * veth pair on a private 10.x /30, so a coordinator on the root side talks to actors in them over
 * real routed TCP (never loopback). The coordinator listens on node A's root-side address; node
 * B's actors reach it through their own link and a default route (the root namespace accepts a
 * packet for any of its addresses on any link).
 *
 *   root namespace                     namespace <prefix>-a          namespace <prefix>-b
 *   <prefix>a  10.X.Y.1/30  ── veth ──  eth0 10.X.Y.2/30
 *   <prefix>b  10.X.Y.5/30  ── veth ──────────────────────────────── eth0 10.X.Y.6/30
 *
 * Faults:
 * - `partition(node)`: an nftables table *inside the node's namespace* whose input and output
 *   chains drop everything. Packets vanish silently (no RST, no ICMP, no local error): the
 *   coordinator sees a connection that is open and silent, exactly as across a cut link, and a
 *   connect from the node retries its SYN until `heal(node)` deletes the table. The rules live
 *   and die with the namespace: nothing is added to the machine's own ruleset.
 * - `killAll(node)`: SIGKILL to every process in the namespace (the node's whole process tree).
 *
 * Names carry a random suffix and the /30s a random 10.X.Y block not in use on this machine, so
 * parallel runs do not collide (names and addresses only: nothing a test asserts depends on it).
 * `createNodesAt(list)` makes nodes with fixed names and addresses instead, for a configuration
 * that names them (a Slurm cluster's slurm.conf), refusing with a clear error any that is in use.
 * `enter(node)` is the `nsenter --net` prefix that starts a daemon in a node's namespace.
 * `destroy()` kills what runs in the namespaces, deletes them and their links, and is safe to call
 * twice; `destroyAllNodes()` destroys whatever this process still has (for an afterEach: a test
 * whose body was abandoned never reaches its own `finally`), and the process's exit does too.
 *
 * `netnsUnavailable()` / `partitionUnavailable()` say why this cannot run here (not Linux, not
 * root, no `ip`, no CAP_NET_ADMIN, no `nft`); tests skip with that reason printed.
 *
 * `NetnsLauncher` (a Launcher) starts the actor host inside a node's namespace with
 * `ip netns exec <ns> <runtime binary> <host module>` (launcher.ts `hostCommand`), on its
 * preferred node unless that node is marked lost, then on the next one in order. Once a node is
 * marked lost, the exits of its processes are no longer reported to the supervisor (nothing
 * reports from a lost machine): their deaths are found through the connection alone.
 *
 * @example
 * ```ts
 * const nodes = createNodes();
 * try {
 *   const launcher = new NetnsLauncher(nodes.list);
 *   const sup = new Supervisor({ faultTolerance, roles, launcher, transport: { kind: "tcp", host: nodes.coordinatorHost, port: 0 } });
 *   ...; nodes.partition(nodes.a); ...; nodes.heal(nodes.a);
 * } finally {
 *   nodes.destroy();
 * }
 * ```
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { CommandProcess } from "../../runtime/core/supervisor/command_process.ts";
import { procSnapshot } from "../../runtime/core/supervisor/forensics.ts";
import type { ExitStatus } from "../../runtime/core/adapter/index.ts";
import { hostCommand, type ActorProcess, type LaunchRequest, type Launcher, type Placement } from "../../runtime/core/supervisor/launcher.ts";

/** One simulated machine: a network namespace and its link to the root namespace. */
export interface NetNode {
  /** The node's name in placements and events ("node-a"). */
  readonly name: string;
  /** The network namespace (`ip netns` name). */
  readonly namespace: string;
  /** The veth end in the root namespace. */
  readonly rootLink: string;
  /** Address of the root side of the link. */
  readonly rootAddress: string;
  /** The node's own address (its eth0). */
  readonly address: string;
}

/** The nftables table a partition adds inside a node's namespace. */
const PARTITION_TABLE = "revenant_partition";
const PARTITION_RULESET = `table inet ${PARTITION_TABLE} {
  chain input { type filter hook input priority 0; policy drop; }
  chain output { type filter hook output priority 0; policy drop; }
}
`;

function which(command: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/sbin", "/usr/bin", "/bin"]) {
    if (dir && existsSync(`${dir}/${command}`)) return `${dir}/${command}`;
  }
  return undefined;
}

const IP = which("ip");
const NFT = which("nft");
const NSENTER = which("nsenter");

/** Runs a command to completion; its stdout, or throws with its stderr. */
function run(argv: readonly string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8", input, timeout: 30_000 });
  if (r.error) throw new Error(`${argv.join(" ")}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${r.status ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Runs a command, ignoring failure (teardown of what may already be gone). */
function tryRun(argv: readonly string[]): void {
  spawnSync(argv[0]!, argv.slice(1), { stdio: "ignore", timeout: 30_000 });
}

const suffix = () => randomBytes(3).toString("hex");

let unavailable: string | undefined | null = null;

/** Why network namespaces cannot be made here; undefined when they can (checked once, by making one). */
export function netnsUnavailable(): string | undefined {
  if (unavailable !== null) return unavailable;
  unavailable = (() => {
    if (process.platform !== "linux") return `network namespaces need Linux (this is ${process.platform})`;
    if (process.getuid?.() !== 0) return "network namespaces need root (ip netns add, veth links)";
    if (!IP) return "`ip` (iproute2) is not installed";
    const probe = `rvnprobe${suffix()}`;
    try {
      run([IP, "netns", "add", probe]);
      run([IP, "link", "add", `${probe}`, "type", "veth", "peer", "name", "eth0", "netns", probe]);
      return undefined;
    } catch (e) {
      return `cannot make a network namespace with a veth link (no CAP_NET_ADMIN?): ${(e as Error).message}`;
    } finally {
      tryRun([IP, "link", "del", probe]);
      tryRun([IP, "netns", "del", probe]);
    }
  })();
  return unavailable;
}

let nftUnavailable: string | undefined | null = null;

/** Why partitions cannot be made here (no namespaces, or no nftables); undefined when they can. */
export function partitionUnavailable(): string | undefined {
  const base = netnsUnavailable();
  if (base) return base;
  if (nftUnavailable !== null) return nftUnavailable;
  nftUnavailable = (() => {
    if (!NFT) return "`nft` (nftables) is not installed: apt-get install nftables";
    const probe = `rvnprobe${suffix()}`;
    try {
      run([IP!, "netns", "add", probe]);
      run([IP!, "netns", "exec", probe, NFT, "-f", "-"], PARTITION_RULESET);
      return undefined;
    } catch (e) {
      return `cannot add nftables rules in a network namespace: ${(e as Error).message}`;
    } finally {
      tryRun([IP!, "netns", "del", probe]);
    }
  })();
  return nftUnavailable;
}

/** A 10.X.Y.0/29 block with no address or route of this machine in it. */
function freeBlock(): string {
  const inUse = run([IP!, "-4", "-o", "addr", "show"]) + run([IP!, "-4", "route", "show", "table", "all"]);
  for (let i = 0; i < 50; i++) {
    const [x, y] = randomBytes(2);
    const block = `10.${200 + (x! % 50)}.${y}`;
    if (!inUse.includes(`${block}.`)) return block;
  }
  throw new Error("no free 10.x.y.0/29 block found for the test network");
}

/** Node A and node B of `createNodes`: names with `prefix`, the two /30s of `block`. */
function pairIn(prefix: string, block: string): [NetNode, NetNode] {
  const node = (letter: "a" | "b", base: number): NetNode => ({
    name: `node-${letter}`,
    namespace: `${prefix}-${letter}`,
    rootLink: `${prefix}${letter}`,
    rootAddress: `${block}.${base + 1}`,
    address: `${block}.${base + 2}`,
  });
  return [node("a", 0), node("b", 4)];
}

export class Nodes {
  private destroyed = false;

  /** `list`: node A, then node B. */
  constructor(readonly list: readonly [NetNode, NetNode]) {}

  get a(): NetNode {
    return this.list[0];
  }

  get b(): NetNode {
    return this.list[1];
  }

  /** Where the coordinator listens: the root side of node A's link. */
  get coordinatorHost(): string {
    return this.a.rootAddress;
  }

  /** Makes both namespaces and links, up, with a default route to the root side. */
  build(): void {
    for (const n of this.list) {
      run([IP!, "netns", "add", n.namespace]);
      run([IP!, "link", "add", n.rootLink, "type", "veth", "peer", "name", "eth0", "netns", n.namespace]);
      run([IP!, "addr", "add", `${n.rootAddress}/30`, "dev", n.rootLink]);
      run([IP!, "link", "set", n.rootLink, "up"]);
      run([IP!, "-n", n.namespace, "addr", "add", `${n.address}/30`, "dev", "eth0"]);
      run([IP!, "-n", n.namespace, "link", "set", "lo", "up"]);
      run([IP!, "-n", n.namespace, "link", "set", "eth0", "up"]);
      run([IP!, "-n", n.namespace, "route", "add", "default", "via", n.rootAddress]);
    }
  }

  /** Drops every packet into and out of `node` (synchronous: usable inside an event listener). */
  partition(node: NetNode): void {
    run([IP!, "netns", "exec", node.namespace, NFT!, "-f", "-"], PARTITION_RULESET);
  }

  /** Lets `node`'s traffic through again. */
  heal(node: NetNode): void {
    run([IP!, "netns", "exec", node.namespace, NFT!, "delete", "table", "inet", PARTITION_TABLE]);
  }

  /**
   * The command prefix that runs a command in `node`'s network namespace and nothing else:
   * `nsenter --net`, unlike `ip netns exec`, keeps the root namespace's /sys (with its cgroup
   * mounts, which a daemon such as slurmd looks for).
   */
  enter(node: NetNode): string[] {
    return [NSENTER!, `--net=/var/run/netns/${node.namespace}`];
  }

  /** Process ids of everything running in `node`'s namespace. */
  pids(node: NetNode): number[] {
    return run([IP!, "netns", "pids", node.namespace]).split(/\s+/).filter(Boolean).map(Number);
  }

  /** SIGKILLs every process of `node`: the node's whole process tree vanishes at once. */
  killAll(node: NetNode): number[] {
    const pids = this.pids(node);
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    return pids;
  }

  /** The namespace a process runs in, by name (`ip netns identify`); "" for the root namespace. */
  namespaceOf(pid: number): string {
    return run([IP!, "netns", "identify", String(pid)]).trim();
  }

  /** Kills what runs in the namespaces, deletes them and their links. Idempotent; never throws. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    for (const n of this.list) {
      try {
        this.killAll(n);
      } catch {
        // the namespace was never made
      }
      tryRun([IP!, "netns", "del", n.namespace]);
      tryRun([IP!, "link", "del", n.rootLink]); // gone with its peer already, unless the peer never moved
    }
  }

  /** True once nothing of this network is left: no namespace, no link. */
  isGone(): boolean {
    const namespaces = run([IP!, "netns", "list"]);
    const links = run([IP!, "-o", "link", "show"]);
    return this.list.every((n) => !namespaces.includes(n.namespace) && !links.includes(`${n.rootLink}@`) && !links.includes(`${n.rootLink}:`));
  }
}

const live = new Set<Nodes>();
let exitHookInstalled = false;

/** Destroys every network made by this process and not destroyed yet (a test runner's afterEach). */
export function destroyAllNodes(): void {
  for (const n of [...live]) n.destroy();
}

/** Makes the two nodes (call netnsUnavailable() first). Destroyed again if building fails. */
export function createNodes(): Nodes {
  return makeNodes(pairIn(`rvn${suffix()}`, freeBlock()));
}

/**
 * Makes two nodes with fixed names and addresses (a cluster whose configuration names them),
 * after checking that no namespace, link or address of theirs is in use here: a clear error
 * otherwise, naming what is taken, and nothing of this machine's touched.
 */
export function createNodesAt(list: readonly [NetNode, NetNode]): Nodes {
  const namespaces = run([IP!, "netns", "list"]);
  const links = run([IP!, "-o", "link", "show"]);
  const inUse = run([IP!, "-4", "-o", "addr", "show"]) + run([IP!, "-4", "route", "show", "table", "all"]);
  const taken = list.flatMap((n) => [
    ...(namespaces.split("\n").some((l) => l.split(" ")[0] === n.namespace) ? [`namespace ${n.namespace}`] : []),
    ...(links.includes(`${n.rootLink}@`) || links.includes(`${n.rootLink}:`) ? [`link ${n.rootLink}`] : []),
    ...[n.rootAddress, n.address].filter((a) => new RegExp(`\\b${a.replaceAll(".", "\\.")}\\b`).test(inUse)).map((a) => `address ${a}`),
  ]);
  if (taken.length) throw new Error(`cannot make the test network: ${taken.join(", ")} already in use on this machine (another run of this test, or what a killed one left: ip netns del / ip link del)`);
  return makeNodes(list);
}

function makeNodes(list: readonly [NetNode, NetNode]): Nodes {
  const nodes = new Nodes(list);
  live.add(nodes);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", destroyAllNodes);
  }
  try {
    nodes.build();
  } catch (e) {
    nodes.destroy();
    throw e;
  }
  return nodes;
}

/**
 * The TCP connections process `pid` holds, as its own network namespace sees them: its socket
 * descriptors (/proc/<pid>/fd) matched by inode in /proc/<pid>/net/tcp; local and remote
 * `address:port`, and the state (01 = established).
 */
export function tcpConnections(pid: number): { local: string; remote: string; state: string }[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // closed while we looked
    }
  }
  const hexAddress = (s: string) => {
    const [ip, port] = s.split(":");
    const bytes = ip!.match(/../g)!.map((h) => parseInt(h, 16)).reverse(); // little-endian IPv4
    return `${bytes.join(".")}:${parseInt(port!, 16)}`;
  };
  return readFileSync(`/proc/${pid}/net/tcp`, "utf8").trim().split("\n").slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => inodes.has(f[9]!))
    .map((f) => ({ local: hexAddress(f[1]!), remote: hexAddress(f[2]!), state: f[3]! }));
}

export interface NetnsLauncherOptions {
  /** The node an actor should run on (by node name); default the first node. */
  prefer?(request: LaunchRequest): string;
  /** Told where each incarnation was started. */
  onPlaced?(placement: Placement): void;
}

/**
 * An actor process as the coordinator sees one on another machine: its exit is reported, as a
 * launcher (srun, a pod's status) would report it, while its node is up. Once the node is lost,
 * nothing reports anything from it: the exit is seen only after the coordinator itself has given
 * up on the process and killed it (missed pings, a deadline), so the loss is found through the
 * connection, as across a real network.
 */
class NodeProcess implements ActorProcess {
  readonly exited: Promise<ExitStatus>;
  private killed!: () => void;

  constructor(private readonly child: CommandProcess, readonly node: string, isLost: () => boolean) {
    const killed = new Promise<void>((resolve) => (this.killed = resolve));
    this.exited = child.exited.then((status) => (isLost() ? killed.then(() => status) : status));
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get stdout(): ReadableStream<Uint8Array> {
    return this.child.stdout;
  }

  get stderr(): ReadableStream<Uint8Array> {
    return this.child.stderr;
  }

  kill(signal: NodeJS.Signals = "SIGTERM"): void {
    if (signal === "SIGKILL") this.killed();
    this.child.kill(signal);
  }
}

/**
 * Starts actor hosts inside the nodes' namespaces: on the preferred node, or, once that node is
 * marked lost, on the next node in order that is not.
 */
export class NetnsLauncher implements Launcher {
  readonly name = "netns";
  private readonly lost = new Set<string>();

  constructor(private readonly nodes: readonly NetNode[], private readonly o: NetnsLauncherOptions = {}) {}

  /**
   * `node` is gone: nothing more starts there (its actors' next incarnations go to the next
   * node), and the exits of its processes are no longer reported (see NodeProcess).
   */
  markLost(node: NetNode): void {
    this.lost.add(node.name);
  }

  private choose(request: LaunchRequest): NetNode {
    const preferred = this.o.prefer?.(request) ?? this.nodes[0]!.name;
    const from = Math.max(0, this.nodes.findIndex((n) => n.name === preferred));
    for (let i = 0; i < this.nodes.length; i++) {
      const node = this.nodes[(from + i) % this.nodes.length]!;
      if (!this.lost.has(node.name)) return node;
    }
    throw new Error(`no node to start ${request.actor} on: ${this.nodes.map((n) => n.name).join(", ")} are all lost`);
  }

  launch(request: LaunchRequest): ActorProcess {
    const node = this.choose(request);
    // `ip netns exec` enters the namespace and execs the command: the pid is the actor host's own.
    const child = new CommandProcess([IP!, "netns", "exec", node.namespace, ...hostCommand(request.module)], request.env, () => true);
    const { actor, role, rank, incarnation } = request;
    this.o.onPlaced?.({ actor, role, rank, incarnation, node: node.name, handle: `${node.namespace}/${child.pid}` });
    return new NodeProcess(child, node.name, () => this.lost.has(node.name));
  }

  inspect(child: ActorProcess): Record<string, unknown> {
    const seen = { launcher: "netns", node: child.node };
    return child.pid === undefined ? seen : { ...seen, ...procSnapshot(child.pid) };
  }
}
