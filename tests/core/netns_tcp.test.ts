/**
 * Actors on other machines, simulated with network namespaces (tests/helpers/netns.ts): the
 * coordinator listens on a 10.x address on the root side of a veth link, actors run in the
 * namespaces "node-a" and "node-b" and connect over real routed TCP. A partition drops a node's
 * traffic (nftables in its namespace); a lost node's processes are all killed at once.
 *
 * - calls work across the namespaces;
 * - a partitioned actor misses its pings, is killed and restarted, and the calls queued meanwhile
 *   complete in order on the restored state;
 * - a partition healed before the ping timeout costs nothing: no death, calls go on;
 * - a lost node's actors are found by their missed pings (nothing reports from a lost machine)
 *   and restarted on the other node, their state restored.
 *
 * Everything waits on the supervisor's events or on call results, never on time. Each test makes
 * its own namespaces; afterEach removes them (and shuts the supervisor down), whether it passed
 * or not.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { FaultTolerance } from "../../config/schema.ts";
import type { RuntimeEvent } from "../../runtime/core/metrics/events.ts";
import { EventLog } from "../../runtime/core/metrics/events.ts";
import type { LaunchRequest } from "../../runtime/core/supervisor/launcher.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { createNodes, destroyAllNodes, NetnsLauncher, netnsUnavailable, partitionUnavailable, tcpConnections, type NetNode, type Nodes } from "../helpers/netns.ts";
import { makeSupervisor } from "../helpers/supervision.ts";

const noNetns = netnsUnavailable();
const noPartition = partitionUnavailable();
if (noNetns) console.log(`[network namespace tests skipped] ${noNetns}`);
else if (noPartition) console.log(`[network partition tests skipped] ${noPartition}`);

interface Net {
  nodes: Nodes;
  launcher: NetnsLauncher;
  sup: Supervisor;
  events: EventLog;
}

/** The supervisor of the running test, shut down after it whatever happened. */
let running: Supervisor | undefined;

/**
 * After each test, even one whose body was abandoned (a failed expectation, an unhandled error):
 * the supervisor is shut down, then the namespaces and links are removed.
 */
afterEach(async () => {
  try {
    await running?.shutdown();
  } finally {
    running = undefined;
    destroyAllNodes();
  }
});

/**
 * Runs `body` with fresh nodes and a supervisor listening on node A's root-side address; actors
 * named in `onB` start on node B, the others on node A. On success, checks that the supervisor's
 * shutdown and the nodes' removal leave nothing behind (afterEach does the same after a failure).
 */
async function withNet(ft: Partial<FaultTolerance>, onB: readonly string[], body: (net: Net) => Promise<void>): Promise<void> {
  const nodes = createNodes();
  const events = new EventLog();
  const prefer = (r: LaunchRequest) => (onB.includes(r.actor) ? nodes.b.name : nodes.a.name);
  const launcher = new NetnsLauncher(nodes.list, {
    prefer,
    onPlaced: (p) => events.emit({ type: "placed", actor: p.actor, role: p.role, incarnation: p.incarnation, node: p.node, handle: p.handle }),
  });
  const sup = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ...ft }, {
    launcher,
    events,
    transport: { kind: "tcp", host: nodes.coordinatorHost, port: 0 },
  }).sup;
  running = sup;
  await body({ nodes, launcher, sup, events });
  await sup.shutdown();
  running = undefined;
  expect(nodes.pids(nodes.a).concat(nodes.pids(nodes.b))).toEqual([]);
  nodes.destroy();
  expect(nodes.isGone()).toBe(true);
}

/** Calls whose failure, if the test is abandoned before awaiting them, is no unhandled rejection. */
function calls<T>(n: number, make: () => Promise<T>): Promise<T>[] {
  return range(0, n).map(() => {
    const p = make();
    p.catch(() => {});
    return p;
  });
}

/** The first event (already logged or still to come) that matches. */
function eventWhere(events: EventLog, match: (e: RuntimeEvent) => boolean): Promise<RuntimeEvent> {
  const seen = events.events.find(match);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve) => {
    const off = events.subscribe((e) => {
      if (!match(e)) return;
      off();
      resolve(e);
    });
  });
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const deaths = (events: EventLog) => events.events.filter((e) => e.type === "death").map((e) => [e.actor, e.cause]);
const placedOn = (events: EventLog, actor: string) => events.events.filter((e) => e.type === "placed" && e.actor === actor).map((e) => [e.incarnation, e.node]);

/** The actor's process runs in `node`'s namespace and holds an established TCP connection from it to the coordinator. */
function expectConnectedFrom(net: Net, pid: number, node: NetNode): void {
  expect(net.nodes.namespaceOf(pid)).toBe(node.namespace);
  const address = net.sup.actorAddress!;
  if (address.kind !== "tcp") throw new Error(`expected a TCP address, got ${address.kind}`);
  const established = tcpConnections(pid).filter((c) => c.state === "01" && c.remote === `${address.host}:${address.port}`);
  expect(established.map((c) => c.local.split(":")[0])).toEqual([node.address]);
}

describe("actors in network namespaces over TCP", () => {
  test.skipIf(!!noNetns)("calls work across the namespaces, over routed TCP from each node's own address", async () => {
    await withNet({}, ["b"], async (net) => {
      const { sup, nodes } = net;
      await sup.start([{ id: "a", role: "counter" }, { id: "b", role: "counter" }]);
      expect(sup.actorAddress).toMatchObject({ kind: "tcp", host: nodes.a.rootAddress });
      const [a, b] = [sup.actor("a"), sup.actor("b")];
      expect(await Promise.all(range(0, 20).map(() => a.call<number>("add", [1])))).toEqual(range(1, 20));
      expect(await Promise.all(range(0, 20).map(() => b.call<number>("add", [2])))).toEqual(range(1, 20).map((i) => 2 * i));
      expectConnectedFrom(net, a.pid!, nodes.a);
      expectConnectedFrom(net, b.pid!, nodes.b); // node B reaches node A's root-side address through its own link
      expect(placedOn(net.events, "a")).toEqual([[1, "node-a"]]);
      expect(placedOn(net.events, "b")).toEqual([[1, "node-b"]]);
      expect(deaths(net.events)).toEqual([]);
    });
  });

  test.skipIf(!!noPartition)("a partitioned actor misses its pings, is killed and restarted; calls queued meanwhile complete in order on its restored state", async () => {
    await withNet({ ping_timeout_s: 1 }, ["b"], async (net) => {
      const { sup, nodes, events } = net;
      await sup.start([{ id: "a", role: "counter" }, { id: "b", role: "counter" }]);
      const [a, b] = [sup.actor("a"), sup.actor("b")];
      for (let i = 0; i < 5; i++) await a.call("add", [1]);
      await a.takeSnapshot(); // restored from this snapshot, then the two calls after it replayed
      await a.call("add", [1]);
      await a.call("add", [1]);
      const firstPid = a.pid!;
      // The link comes back as soon as the death is recorded, inside the event (synchronously),
      // so the next incarnation on node A always finds its way to the coordinator: the test
      // never depends on the order of the restart and a later heal.
      const off = events.subscribe((e) => {
        if (e.type === "death" && e.actor === "a") nodes.heal(nodes.a);
      });
      try {
        nodes.partition(nodes.a);
        const queued = calls(20, () => a.call<number>("add", [1]));
        const death = await eventWhere(events, (e) => e.type === "death" && e.actor === "a");
        expect(death).toMatchObject({ cause: "hang", incarnation: 1, pid: firstPid });
        expect(await Promise.all(queued)).toEqual(range(8, 20));
      } finally {
        off();
      }
      expect(a.incarnation).toBe(2);
      expect(await eventWhere(events, (e) => e.type === "restart" && e.actor === "a")).toMatchObject({ incarnation: 2 });
      expect(placedOn(events, "a")).toEqual([[1, "node-a"], [2, "node-a"]]);
      expectConnectedFrom(net, a.pid!, nodes.a);
      // Node B never noticed.
      expect(await b.call("add", [3])).toBe(3);
      expect(b.incarnation).toBe(1);
      expect(deaths(events)).toEqual([["a", "hang"]]);
    });
  });

  test.skipIf(!!noPartition)("a partition healed before the ping timeout: no death, the pending calls are answered, node B served all along", async () => {
    // ping_timeout_s is far above how long the partition lasts: two nft runs and a few calls
    // (milliseconds; seconds at worst on a loaded machine). After the heal, TCP resends what was
    // dropped at its next retransmission timer, which starts at 200 ms and doubles, so answers
    // come within about twice the partition's length plus 200 ms. Pings sent meanwhile are
    // queued in the kernel, and writes never wait on the peer: the coordinator's event loop is
    // never blocked by the half-open connection, as node B's answers below show.
    await withNet({ ping_timeout_s: 30 }, ["b"], async (net) => {
      const { sup, nodes, events } = net;
      await sup.start([{ id: "a", role: "counter" }, { id: "b", role: "counter" }]);
      const [a, b] = [sup.actor("a"), sup.actor("b")];
      for (let i = 0; i < 3; i++) await a.call("add", [1]);
      nodes.partition(nodes.a);
      let answered = 0;
      const pending = calls(5, () => a.call<number>("add", [1]).finally(() => answered++));
      // Sent, and unanswerable while the partition lasts: the first is on the wire, all pending.
      expect(a.callInFlight?.method).toBe("add");
      expect(a.pending).toBe(5);
      expect(await Promise.all(range(0, 10).map(() => b.call<number>("add", [1])))).toEqual(range(1, 10));
      expect(answered).toBe(0);
      nodes.heal(nodes.a);
      expect(await Promise.all(pending)).toEqual(range(4, 5));
      expect(await a.call("add", [1])).toBe(9);
      expect([a.incarnation, b.incarnation]).toEqual([1, 1]);
      expect(deaths(events)).toEqual([]);
    });
  });

  test.skipIf(!!noPartition)("node A is lost (its processes killed, its traffic dropped): its actors are restarted on node B with their state", async () => {
    await withNet({ ping_timeout_s: 1 }, ["w"], async (net) => {
      const { sup, nodes, events, launcher } = net;
      await sup.start([{ id: "c", role: "counter", ranks: 2 }, { id: "w", role: "counter" }]);
      const [c0, c1] = sup.group("c");
      const w = sup.actor("w");
      for (let i = 0; i < 5; i++) await Promise.all([c0!.call("add", [1]), c1!.call("add", [10])]);
      const before = [c0!.pid!, c1!.pid!];
      launcher.markLost(nodes.a);
      nodes.partition(nodes.a);
      expect(nodes.killAll(nodes.a).sort()).toEqual([...before].sort());
      const calls0 = calls(10, () => c0!.call<number>("add", [1]));
      const calls1 = calls(10, () => c1!.call<number>("add", [10]));
      expect(await Promise.all(calls0)).toEqual(range(6, 10));
      expect(await Promise.all(calls1)).toEqual(range(6, 10).map((i) => 10 * i));
      await Promise.all(["c/0", "c/1"].map((id) => eventWhere(events, (e) => e.type === "restart" && e.actor === id)));
      // Where each incarnation ran: the `placed` events say so.
      expect(placedOn(events, "c/0")).toEqual([[1, "node-a"], [2, "node-b"]]);
      expect(placedOn(events, "c/1")).toEqual([[1, "node-a"], [2, "node-b"]]);
      expect(placedOn(events, "w")).toEqual([[1, "node-b"]]);
      for (const a of [c0!, c1!]) {
        expect(a.incarnation).toBe(2);
        expectConnectedFrom(net, a.pid!, nodes.b);
      }
      expect(nodes.pids(nodes.a)).toEqual([]);
      // Nothing reported the exits from the lost node: its actors were found by their missed pings.
      expect(deaths(events).sort()).toEqual([["c/0", "hang"], ["c/1", "hang"]]);
      expect(await w.call("add", [1])).toBe(1);
      expect(w.incarnation).toBe(1);
    });
  });
});
