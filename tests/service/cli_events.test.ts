/** The console lines `bun run train` prints for actor events: deaths, restarts, failures, ranks dropped. */
import { expect, test } from "bun:test";
import { actorEventLine } from "../../runtime/service/cli/train.ts";

test("a rank dropped from an elastic group gets a line naming it, the ranks left and why", () => {
  const line = actorEventLine({ ts: 0, type: "dropped", actor: "rollout/1", role: "rollout", ranks_left: 3, reason: "max_restarts=0 reached (0 restarts); last death: killed by SIGKILL" });
  expect(line).toBe("actor rollout/1 dropped from its elastic group (3 ranks left take its shards): max_restarts=0 reached (0 restarts); last death: killed by SIGKILL");
  expect(actorEventLine({ ts: 0, type: "placed", actor: "critic", role: "critic", node: "n1" })).toBeUndefined();
});
