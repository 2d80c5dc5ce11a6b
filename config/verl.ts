/**
 * verl's key names, accepted wherever a key can be set (YAML file, environment, arguments, code):
 * each is moved onto the key Revenant calls it, and `resolveConfig` reports each one used, once,
 * as `verl key X → Y`. A few take their value converted (verl's -1 for "never"), said beside them.
 *
 * @example
 * ```ts
 * const { config, notes } = resolveConfig({ args: ["actor_rollout_ref.rollout.n=4"] });
 * config.worker.actor.rollout_n; // 4
 * notes; // ["verl key actor_rollout_ref.rollout.n → worker.actor.rollout_n"]
 * ```
 */
import { nodeAt, type SchemaNode } from "./describe.ts";
import type { ConfigProblem } from "./errors.ts";
import { getPath, setLayerPath, type Layer } from "./sources.ts";

/** A verl key: where its value goes, and how it is converted on the way (when it is). */
export interface VerlAlias {
  target: string;
  /** Says what the conversion does, for the note. */
  convert?: { why: string; apply(value: unknown): unknown };
}

/** verl's -1 ("never") is Revenant's 0 for this key. */
const minusOneIsNever = (target: string): VerlAlias => ({
  target,
  convert: { why: "-1 (never) becomes 0", apply: (v) => (v === -1 || v === "-1" ? 0 : v) },
});

/** verl key → Revenant key. */
export const VERL_ALIASES: Readonly<Record<string, VerlAlias>> = {
  "data.max_response_length": { target: "worker.actor.max_new_tokens" },
  "actor_rollout_ref.model.path": { target: "worker.actor.model.path" },
  "actor_rollout_ref.rollout.n": { target: "worker.actor.rollout_n" },
  "actor_rollout_ref.rollout.temperature": { target: "worker.actor.temperature" },
  "actor_rollout_ref.rollout.top_p": { target: "worker.actor.top_p" },
  "actor_rollout_ref.rollout.top_k": { target: "worker.actor.top_k" },
  "actor_rollout_ref.actor.optim.lr": { target: "worker.actor.lr" },
  "actor_rollout_ref.actor.ppo_mini_batch_size": { target: "worker.actor.ppo_mini_batch_size" },
  "algorithm.kl_ctrl.kl_coef": { target: "algorithm.kl_coef" },
  "trainer.save_freq": { target: "checkpoint.interval" },
  "trainer.test_freq": minusOneIsNever("trainer.val_interval"),
  "trainer.default_local_dir": { target: "trainer.run_dir" },
};

/**
 * The alias for `path`, when it is one whose target this configuration has. (An alias whose
 * target key does not exist stays an unknown key, and its error names the key as it was given.)
 */
export function verlAlias(path: string, schema: SchemaNode): VerlAlias | undefined {
  const alias = Object.hasOwn(VERL_ALIASES, path) ? VERL_ALIASES[path] : undefined;
  return alias && nodeAt(schema, alias.target.split(".")) ? alias : undefined;
}

/** The note printed for an alias used. */
export function verlNote(path: string, alias: VerlAlias): string {
  return `verl key ${path} → ${alias.target}${alias.convert ? ` (${alias.convert.why})` : ""}`;
}

/**
 * Moves every verl key `layer` sets onto its Revenant key, keeping where it was set (so an error
 * about the value names the file line or argument that set it). Strings from the environment and
 * the command line are converted to the target key's type (`coerceText`). A layer that sets both
 * a verl key and its Revenant key is a problem: which one was meant is not clear.
 */
export function moveVerlKeys(
  layer: Layer, schema: SchemaNode, notes: Set<string>, problems: ConfigProblem[], coerceText?: (text: string, node: SchemaNode | undefined) => unknown,
): void {
  for (const [path, alias] of Object.entries(VERL_ALIASES)) {
    const keys = path.split(".");
    let value = getPath(layer.values, keys);
    if (value === undefined || !verlAlias(path, schema)) continue;
    const source = layer.sources.get(path) ?? "code";
    const targetKeys = alias.target.split(".");
    if (getPath(layer.values, targetKeys) !== undefined) {
      problems.push({ path, source, value, message: `verl's name for ${alias.target}, which ${layer.sources.get(alias.target) ?? "the same source"} sets too; set one of them` });
    } else {
      if (typeof value === "string" && coerceText) value = coerceText(value, nodeAt(schema, targetKeys));
      value = alias.convert ? alias.convert.apply(value) : value;
      const problem = setLayerPath(layer, targetKeys, value, source);
      if (problem) problems.push(problem);
      else notes.add(verlNote(path, alias));
    }
    removePath(layer, keys);
  }
}

/** Deletes a key and its origin, then every section it leaves empty. */
function removePath(layer: Layer, keys: string[]): void {
  for (let n = keys.length; n > 0; n--) {
    const parent = n === 1 ? layer.values : getPath(layer.values, keys.slice(0, n - 1));
    if (typeof parent !== "object" || parent === null) return;
    const key = keys[n - 1]!;
    const child = (parent as Record<string, unknown>)[key];
    const emptySection = typeof child === "object" && child !== null && !Array.isArray(child) && Object.keys(child).length === 0;
    if (n < keys.length && !emptySection) return;
    delete (parent as Record<string, unknown>)[key];
    layer.sources.delete(keys.slice(0, n).join("."));
  }
}
