/**
 * The shipped roles, by name. A job can only start these: no module path from a config or a
 * request is ever loaded.
 */
import { fileURLToPath } from "node:url";
import type { RoleEntry } from "../runtime/core/host/role.ts";

const at = (file: string, name: string): RoleEntry => ({ module: fileURLToPath(new URL(file, import.meta.url)), export: name });

export const SHIPPED_ROLES: Readonly<Record<string, RoleEntry>> = Object.freeze({
  actor_rollout: at("./actor_rollout.ts", "ActorRollout"),
  critic: at("./critic.ts", "Critic"),
  ref_policy: at("./ref_policy.ts", "RefPolicy"),
  rollout: at("./rollout.ts", "RolloutRank"),
  reward: at("./reward.ts", "Reward"),
});

export type { ModelRoleOptions, RoleModel, UpdatePlan } from "./model_options.ts";
