/**
 * What every model-backed role shares: a PolicyModel in native memory, its facts and health,
 * and, for the trained roles, the state hooks and the mini-batch update loop. The model's calls
 * queue in the order made; `info` and `health` answer at once even while a long call runs.
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import type { LlamaModelConfig } from "../native/hf/config.ts";
import { type HfModel, isValueHeadTensor, loadHfModel, paramsFromTensors, saveHfModel } from "../native/hf/model_folder.ts";
import { mergeLora, savePeftAdapter } from "../native/hf/peft.ts";
import type { WritableDtype } from "../native/hf/safetensors.ts";
import { PolicyModel, type ModelState } from "../native/policy_model.ts";
import type { Role } from "../runtime/core/host/role.ts";
import { meanStats, miniBatches, type RowBatch } from "./minibatch.ts";
import { ComputeClock, type ComputeInterval } from "./compute_clock.ts";
import { actorThreads, type ModelRoleOptions, type UpdatePlan } from "./model_options.ts";

export class ModelRole implements Role {
  /** When this role's native calls ran (see computeLog). */
  readonly #clock = new ComputeClock();
  protected readonly model: PolicyModel;
  /** Settles once a folder's weights are in the model. */
  readonly #loaded: Promise<void>;
  /** What an export keeps of the folder the weights came from (null: a new model). */
  protected readonly folder: FolderFacts | null;

  constructor(options: ModelRoleOptions, valueHead: boolean) {
    const threads = actorThreads(options.threads, process.env);
    const hf = options.path ? loadHfModel(options.path, { context: options.model.context, valueHead, ...(options.hfConfig ? { hfConfig: options.hfConfig } : {}) }) : null;
    // A LoRA model's frozen base stays in its folder's precision: a BF16 folder's matrices are held as bfloat16.
    const lora = options.model.lora && hf?.dtype === "BF16" ? { ...options.model.lora, bf16Base: true } : options.model.lora;
    const model = new PolicyModel({ ...options.model, lora, valueHead }, { device: options.device, ...(threads === undefined ? {} : { threads }) });
    this.model = this.#clock.wrap(model);
    const load = options.path && hf ? loadWeights(this.model, hf, options.path) : null;
    this.folder = load?.folder ?? null;
    this.#loaded = load?.loaded ?? Promise.resolve();
    // Awaited by every call (see ready()); marked handled so a failed load is those calls' error,
    // not an unhandled rejection that ends the process first.
    this.#loaded.catch(() => {});
  }

  /** The model once a folder's weights are in it; a failed load fails the call that waits here. */
  protected async ready(): Promise<PolicyModel> {
    await this.#loaded;
    return this.model;
  }

  /**
   * `fallback`: why device "auto" runs on the CPU (null when it did not fall back), so a slow CPU run
   * is explained; `baseBytes`: what the base weights take in the model's memory.
   */
  info() {
    const m = this.model;
    return { backend: m.backend, device: m.device, fallback: m.fallback, params: m.numParams, baseBytes: m.baseBytes, step: m.step };
  }

  /**
   * The native calls since the last computeLog, as [start, end] epoch-millisecond intervals: what
   * a benchmark needs to split step time into native compute and the rest. Taking it clears it.
   */
  computeLog(): ComputeInterval[] {
    return this.#clock.take();
  }

  health() {
    const m = this.model;
    return { ok: true, backend: m.backend, device: m.device, fallback: m.fallback, step: m.step };
  }
}

/**
 * Puts a Hugging Face folder's weights (`hf`, read from `path`) into `model` (built from the same config.json), with fresh
 * optimizer moments. A value head the folder lacks (a policy checkpoint under a critic) keeps the
 * model's own seeded initialisation; every other tensor must be there with its exact shape. The
 * folder is read and checked now (a bad one throws from the constructor); the weights go in
 * through the model's queue, ahead of every call made afterwards.
 */
function loadWeights(model: PolicyModel, hf: HfModel, path: string): { loaded: Promise<void>; folder: FolderFacts } {
  const params = paramsFromTensors(model.tensors, hf.tensors, {
    tied: hf.config.tiedEmbeddings, optional: isValueHeadTensor, fallback: model.initialParams(),
  });
  const n = params.length;
  const maxPositions = hf.hfConfig.max_position_embeddings as number; // checked by loadHfModel
  const folder = { dtype: hf.dtype, maxPositions, path };
  // A LoRA model's state is its adapters: the folder is its frozen base.
  if (model.config.lora) return { loaded: model.loadBaseFrom(params), folder };
  return { loaded: model.setState({ params, adamM: new Float32Array(n), adamV: new Float32Array(n), step: 0 }), folder };
}

/** What a loaded folder says that the model's config does not. */
interface FolderFacts {
  /** The dtype its weights are stored in: an export's default. */
  dtype: WritableDtype;
  /** Its max_position_embeddings, kept on export whatever context the job trained at. */
  maxPositions: number;
  /** Where it is: a LoRA export's base_model_name_or_path. */
  path: string;
}

/** `checkpoint.hf_dtype`'s words: auto keeps the loaded folder's dtype (F32 for a new model). */
export type ExportDtype = "auto" | "f32" | "bf16" | "f16";
const EXPORT_DTYPES: Readonly<Record<Exclude<ExportDtype, "auto">, WritableDtype>> = { f32: "F32", bf16: "BF16", f16: "F16" };

/** What goes into an exported Hugging Face folder besides the weights. */
export interface HfExport {
  /** The folder to write (made if missing; its files replaced). */
  dir: string;
  /** A tokenizer folder whose files are copied along, so the export loads on its own. */
  tokenizerDir?: string;
  bosTokenId?: number;
  eosTokenId?: number;
  padTokenId?: number;
  /** Default "auto": the dtype of the folder the weights were loaded from, F32 for a new model. */
  dtype?: ExportDtype;
  /**
   * A LoRA policy also writes its base with the adapters merged in (W + scale · B·A) as a full
   * folder here, in `dtype`. Ignored when every weight trains.
   */
  mergedDir?: string;
}

/** Tokenizer files transformers reads; those present are copied into an export. */
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"];

/** Copies the tokenizer files `from` has into `to`; how many. */
function copyTokenizer(from: string | undefined, to: string): number {
  let files = 0;
  for (const f of TOKENIZER_FILES) {
    if (from && existsSync(join(from, f))) {
      copyFileSync(join(from, f), join(to, f));
      files++;
    }
  }
  return files;
}

/** A role whose weights train: restorable, and updated over shuffled mini-batches. */
export class TrainedModelRole extends ModelRole {
  /**
   * Writes the current weights as a Hugging Face folder (config.json, model.safetensors, the
   * tokenizer's files) that transformers, vLLM and llama.cpp's converter load. Llama-family
   * models only: the GPT-2-style model has no Hugging Face counterpart with its names.
   */
  async exportHf(o: HfExport): Promise<{ dir: string; files: number }> {
    const cfg = this.model.config;
    if (cfg.arch !== "llama") throw new TypeError(`exportHf: only arch "llama" models export to Hugging Face folders (this one is arch ${JSON.stringify(cfg.arch)})`);
    const model = await this.ready();
    const { params } = await model.getState();
    mkdirSync(o.dir, { recursive: true });
    const wanted = o.dtype ?? "auto";
    if (wanted !== "auto" && !(wanted in EXPORT_DTYPES)) throw new TypeError(`exportHf: dtype is ${JSON.stringify(wanted)}; expected auto, f32, bf16 or f16`);
    const dtype = wanted === "auto" ? (this.folder?.dtype ?? "F32") : EXPORT_DTYPES[wanted];
    const save = (dir: string, weights: Float32Array) => {
      saveHfModel(dir, cfg as LlamaModelConfig, this.model.tensors, weights, {
        dtype, bosTokenId: o.bosTokenId, eosTokenId: o.eosTokenId, padTokenId: o.padTokenId,
        ...(this.folder ? { maxPositionEmbeddings: Math.max(this.folder.maxPositions, cfg.context) } : {}),
      });
      return copyTokenizer(o.tokenizerDir, dir);
    };
    if (!cfg.lora) return { dir: o.dir, files: save(o.dir, params) };
    // A LoRA policy: its adapters in PEFT's layout (float32, as they trained), loadable onto the base folder.
    savePeftAdapter(o.dir, { lora: cfg.lora, tensors: model.loraTensors, adapters: params, baseModel: this.folder?.path ?? "" });
    const files = copyTokenizer(o.tokenizerDir, o.dir);
    if (o.mergedDir) {
      const base = new Float32Array(model.numParams);
      await model.copyBaseTo(base);
      save(o.mergedDir, mergeLora(model.tensors, base, cfg.lora, model.loraTensors, params));
    }
    return { dir: o.dir, files };
  }

  async getState(): Promise<{ model: ModelState }> {
    return { model: await (await this.ready()).getState() };
  }

  async loadState(state: { model: ModelState }): Promise<void> {
    await (await this.ready()).setState(state.model);
  }

  /** Runs `step` on every mini-batch of the plan (with its index in the update); the mean of each statistic. */
  protected async updateOver<B extends RowBatch, S extends object>(batch: B, plan: UpdatePlan, step: (mb: B, index: number) => Promise<S>): Promise<S> {
    const stats: S[] = [];
    for (const mb of miniBatches(batch, plan)) stats.push(await step(mb, stats.length));
    return meanStats(stats);
  }
}
