/**
 * What the trainer passes to every model-backed role, and the mini-batch plan of an update.
 * Plain data: it crosses the process boundary in the actor's spawn spec or a call's arguments.
 */
import type { Device, PolicyModelConfig } from "../native/policy_model.ts";

/** A role's model: its architecture and sizes, and the Hugging Face folder its weights come from (none: a new model). */
export interface RoleModel {
  config: Omit<PolicyModelConfig, "valueHead" | "seed">;
  path?: string;
}

export interface ModelRoleOptions {
  /** Architecture and sizes; `seed` makes the initial weights (of the value head only, for a loaded model). */
  model: Omit<PolicyModelConfig, "valueHead"> & { seed: number };
  /** Hugging Face model folder to load the weights from (config.json must agree with `model`). */
  path?: string;
  device: Device;
}

/** How an update walks its batch: `epochs` passes, shuffled mini-batches seeded by `seed`. */
export interface UpdatePlan {
  epochs: number;
  miniBatchSize: number;
  seed: number;
}
