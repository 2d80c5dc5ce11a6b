/**
 * A training job through the Slurm launcher on a real two-node Slurm cluster
 * (tests/helpers/slurm.ts `startSlurmNodes`: slurmctld on this machine, one slurmd in each of two
 * network namespaces). The coordinator listens on the root side of node1's link; the policy and
 * the reference run on node1, the critic and two rollout ranks on node2 (cluster.slurm.place),
 * each an srun job whose process runs in its node's namespace and connects back over routed TCP
 * (checked after step 1: the actor hosts in each namespace and their connections).
 *
 * - After step 3, node2 is lost: its traffic is dropped and every process in it is killed
 *   (slurmd included). Nothing reports from it: the supervisor finds its actors by their missed
 *   pings, Slurm flags the node and marks it down, and the launcher starts their next
 *   incarnations on node1.
 * - After step 4, once Slurm has marked node2 down, node2 comes back: its slurmd starts again
 *   and Slurm returns it to service (ReturnToService=2).
 * - In step 5 the critic is killed (a planned fault): its next incarnation goes back to its home,
 *   node2, now usable again. The rollout ranks, alive on node1, stay there.
 * - The job ends with the weights of the same job run calmly on one machine.
 *
 * Faults are scheduled by step; every wait is on an event, a call's result or Slurm's own state,
 * never on time. Skips, saying why, where Slurm, network namespaces or nftables cannot run.
 */
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolveConfig } from "../../config/index.ts";
import type { Config } from "../../config/schema.ts";
import { FaultPlan } from "../../runtime/core/chaos.ts";
import { isUsableState } from "../../runtime/core/supervisor/slurm_launcher.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { createJob } from "../../runtime/rl/trainer/job.ts";
import { fit } from "../../runtime/rl/trainer/trainer.ts";
import { tcpConnections, type NetNode } from "../helpers/netns.ts";
import { nodeLossJobArgs } from "../helpers/node_loss_job.ts";
import { startSlurmNodes, useSlurmCluster, type SlurmNodes } from "../helpers/slurm.ts";
import { waitFor } from "../helpers/supervision.ts";
import { tempDir } from "../helpers/tmp.ts";

// Started before the test is defined, so that it can be skipped, with the reason, when it cannot run.
const { cluster, skip } = useSlurmCluster<SlurmNodes>(await startSlurmNodes(), "two-node Slurm cluster test");

const quiet = () => {};
const LOST = "node2";
/** A bound on the move off the lost node, which takes seconds (Slurm's and the supervisor's timers). */
const MOVE_BOUND_MS = 60_000;

function config(runDir: string, cluster?: SlurmNodes): Config {
  const [node1, node2] = cluster?.nodes ?? [];
  return resolveConfig({
    file: null,
    env: {},
    args: [
      ...nodeLossJobArgs(runDir, 11), "worker.critic.ppo_mini_batch_size=6",
      ...(cluster
        ? [
          "cluster.launcher=slurm", `cluster.listen=${cluster.coordinatorHost}:0`, `cluster.slurm.nodes=[${node1},${node2}]`,
          `cluster.slurm.place.actor_rollout=${node1}`, `cluster.slurm.place.ref_policy=${node1}`,
          `cluster.slurm.place.critic=${node2}`, `cluster.slurm.place.rollout=${node2}`,
        ]
        : []),
    ],
  }).config;
}

test.skipIf(skip !== undefined)(
  "node2 is lost after step 3: its actors move to node1; node2 comes back, a later restart goes home to it; the job ends as the calm one-machine run",
  async () => {
    const c = cluster!;
    const runDir = tempDir("revenant-slurm2-job-");
    const calmConfig = config(runDir);
    const calm = await fit({ config: calmConfig, job: createJob(calmConfig, "calm"), output: quiet, onNote: quiet });

    const cfg = config(runDir, c);
    let sup: Supervisor | undefined;
    // Where each phase begins in the event log: the loss, and node2's return to service.
    let lostAt = -1;
    let backAt = -1;
    const statesOfLost: string[] = [];
    const placed = (from = 0, to = Infinity) =>
      sup!.events.events.slice(from, to).filter((e) => e.type === "placed");
    const nodesOf = (actor: string, from = 0, to = Infinity) => placed(from, to).filter((e) => e.actor === actor).map((e) => e.node);
    const onLost = ["critic", "rollout/0", "rollout/1"];
    /** The actor hosts running in `node`'s namespace, each with the TCP connections it holds there. */
    const actorHosts = (node: NetNode) => c.net.pids(node)
      .filter((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("runtime/core/host/host.ts"))
      .map((pid) => tcpConnections(pid).filter((t) => t.state === "01").map((t) => `${t.local.split(":")[0]} -> ${t.remote}`));
    let hostsSeen: string[][][] = [];
    let coordinator = "";

    // Bounds the wait for the move off node2, so that a launcher that never moves fails saying so
    // (instead of the job waiting for node2 until the test's own timeout).
    let boundMove!: (moved: Promise<void>) => void;
    const movedOff = new Promise<void>((resolve, reject) => (boundMove = (moved) => void moved.then(resolve, reject)));
    const run = fit({
      config: cfg, job: createJob(cfg, "two-nodes"), output: quiet, onNote: quiet,
      // The critic's first call of step 5 kills it: a restart after node2 is back.
      faultPlan: new FaultPlan([{ actor: "critic", step: 5, call: 1, action: "kill" }]),
      onSupervisor: (s) => (sup = s),
      onStep: async (step) => {
        if (step === 1) {
          const listen = sup!.actorAddress;
          coordinator = listen?.kind === "tcp" ? `${listen.host}:${listen.port}` : `not TCP: ${JSON.stringify(listen)}`;
          hostsSeen = c.net.list.map((node) => actorHosts(node));
        }
        if (step === 3) {
          lostAt = sup!.events.events.length;
          c.lose(LOST);
          boundMove(waitFor(() => onLost.every((actor) => nodesOf(actor, lostAt).at(-1) === "node1"), "the move off node2", MOVE_BOUND_MS).catch(() => {
            const where = onLost.map((actor) => `${actor}: ${JSON.stringify(nodesOf(actor, lostAt))}`).join("; ");
            throw new Error(`node2's actors were not all restarted on node1 within ${MOVE_BOUND_MS / 1000} s of the loss; placements since: ${where}`);
          }));
        }
        if (step === 4) {
          // Step 4 finished: every actor of node2 was restarted somewhere that answers.
          for (const actor of onLost) expect({ actor, now: nodesOf(actor, lostAt).at(-1) }).toEqual({ actor, now: "node1" });
          statesOfLost.push(...await c.waitForState(LOST, (s) => s.startsWith("down"), `Slurm to mark ${LOST} down`));
          await c.restore(LOST);
          statesOfLost.push(c.state(LOST));
          backAt = sup!.events.events.length;
        }
      },
    });

    // The job's end, unless the bound on the move runs out first: then the test fails at once
    // with that bound's error (and the job's own failure, later, is no unhandled rejection).
    run.catch(() => {});
    const result = await Promise.race([run, movedOff.then(() => run)]);
    expect(result.weightsSha256).toBe(calm.weightsSha256);
    expect(result.steps).toBe(6);

    // Before the loss: the policy and the reference on node1, the critic and the ranks on node2.
    expect(placed(0, lostAt).map((e) => [e.actor, e.incarnation, e.node]).sort()).toEqual([
      ["actor_rollout", 1, "node1"], ["critic", 1, "node2"], ["ref_policy", 1, "node1"], ["rollout/0", 1, "node2"], ["rollout/1", 1, "node2"],
    ]);
    // Each actor ran in its node's namespace, connected to the coordinator from the node's own
    // address over its link (routed TCP, never loopback): two hosts on node1, three on node2.
    expect(coordinator).toStartWith(`${c.coordinatorHost}:`);
    expect(hostsSeen).toEqual(c.net.list.map((node, i) => Array(i === 0 ? 2 : 3).fill([`${node.address} -> ${coordinator}`])));
    // Node1 never lost anything.
    expect(nodesOf("actor_rollout")).toEqual(["node1"]);
    expect(nodesOf("ref_policy")).toEqual(["node1"]);

    // The loss: each actor of node2 was found by its missed pings (nothing reported from node2)...
    const deaths = sup!.events.events.filter((e) => e.type === "death");
    for (const actor of onLost) {
      expect({ actor, cause: deaths.find((e) => e.actor === actor && e.incarnation === 1)?.cause }).toEqual({ actor, cause: "hang" });
    }
    // ...Slurm marked node2 down (and not responding: `*`); ReturnToService=2 made it usable again.
    expect(statesOfLost.at(-2)).toBe("down*");
    expect(isUsableState(statesOfLost.at(-1)!)).toBe(true);

    // After the return: the critic's restart went home to node2; the ranks, alive on node1, stayed.
    expect(nodesOf("critic", backAt)).toEqual(["node2"]);
    expect(nodesOf("rollout/0", backAt)).toEqual([]);
    expect(nodesOf("rollout/1", backAt)).toEqual([]);
    const criticDeaths = deaths.filter((e) => e.actor === "critic");
    expect(criticDeaths.at(-1)).toMatchObject({ signal: "SIGKILL" });
  },
  150_000,
);
