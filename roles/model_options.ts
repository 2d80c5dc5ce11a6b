/**
 * What the trainer passes to every model-backed role, and the mini-batch plan of an update.
 * Plain data: it crosses the process boundary in the actor's spawn spec or a call's arguments.
 */
import type { Device, PolicyModelConfig } from "../native/policy_model.ts";

export interface ModelRoleOptions {
  model: Required<Omit<PolicyModelConfig, "valueHead">>;
  device: Device;
}

/** How an update walks its batch: `epochs` passes, shuffled mini-batches seeded by `seed`. */
export interface UpdatePlan {
  epochs: number;
  miniBatchSize: number;
  seed: number;
}
