/**
 * Hugging Face model folders in and out: config.json plus model.safetensors, or shards listed
 * by model.safetensors.index.json. Tensors keep Hugging Face's names, which are the runtime's
 * own for the Llama family, so loading is a check of names and shapes and a copy into the flat
 * parameter vector in the model's tensor order.
 *
 * Decisions:
 * - Tied embeddings: the model has no `lm_head.weight`. A checkpoint that carries one anyway is
 *   accepted when it equals `model.embed_tokens.weight` value for value, and refused otherwise
 *   (the model could not reproduce it).
 * - The critic's value head is not part of a Hugging Face causal LM. It is saved apart, in
 *   `value_head.safetensors` beside model.safetensors (which transformers, vLLM and llama.cpp
 *   ignore), and read back from there when present. Tensors the caller marks optional (the
 *   value head, for a critic started from a policy checkpoint) take the values of `fallback`,
 *   the model's own initial parameters.
 *
 * @example
 * ```ts
 * const hf = loadHfModel("models/qwen2-tiny");
 * const model = new PolicyModel(hf.config);
 * const params = paramsFromTensors(model.tensors, hf.tensors, {
 *   tied: hf.config.tiedEmbeddings, optional: isValueHeadTensor, fallback: model.getState().params,
 * });
 * model.setState({ ...model.getState(), params });
 * saveHfModel("out/qwen2-tuned", hf.config, model.tensors, model.getState().params, { dtype: "BF16" });
 * ```
 */
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import { writeFileDurably } from "../../runtime/core/files.ts";
import { llamaTensors } from "./llama_tensors.ts";
import type { TensorInfo } from "../types.ts";
import { hfConfigFromModel, type FromHfOptions, type LlamaModelConfig, modelConfigFromHf, type ToHfOptions } from "./config.ts";
import { readRegularFile } from "./regular_file.ts";
import { checkSafetensorsFile, HF_METADATA, readSafetensors, type ReadableDtype, type Tensor, writeSafetensors, type WritableDtype } from "./safetensors.ts";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";
/** Where a critic's value head is kept, apart from the causal LM's weights. */
export const VALUE_HEAD_FILE = "value_head.safetensors";

export const EMBED_TOKENS = "model.embed_tokens.weight";
export const LM_HEAD = "lm_head.weight";
const VALUE_HEAD_PREFIX = "value_head.";

/** True for the critic's value-head tensors (named `value_head.*` by the runtime). */
export function isValueHeadTensor(name: string): boolean {
  return name.startsWith(VALUE_HEAD_PREFIX);
}

/** A folder or a checkpoint that does not fit the model; the message names the file or tensor. */
export class ModelFolderError extends Error {
  override name = "ModelFolderError";
}

export interface HfModel {
  config: LlamaModelConfig;
  /** config.json as read (bos/eos ids and the original max_position_embeddings live here). */
  hfConfig: Record<string, unknown>;
  /** Every tensor of the folder, value_head.safetensors included when present. */
  tensors: Map<string, Tensor>;
  /** The weight files read, in order. */
  files: string[];
  /**
   * The dtype the causal LM's weights are stored in (the value head aside): what an export of
   * this model keeps by default. A folder that mixes dtypes reports F32, which loses nothing.
   */
  dtype: ReadableDtype;
}

/** Reads config.json and the weights (single file or sharded) of a Hugging Face model folder. */
export function loadHfModel(dir: string, options: Omit<FromHfOptions, "source"> = {}): HfModel {
  const hfConfig = readJson(join(dir, CONFIG_FILE));
  const config = modelConfigFromHf(hfConfig, { ...options, source: join(dir, CONFIG_FILE) });
  const index = existsSync(join(dir, WEIGHTS_FILE)) || !existsSync(join(dir, INDEX_FILE)) ? null : readIndex(dir);
  const files = weightFiles(dir, index);
  const tensors = new Map<string, Tensor>();
  const dtypes = new Set<ReadableDtype>();
  for (const file of files) {
    const path = join(dir, file);
    for (const [name, t] of readSafetensors(path).tensors) {
      if (file !== VALUE_HEAD_FILE) dtypes.add(t.dtype);
      if (tensors.has(name)) throw new ModelFolderError(`${path}: tensor "${name}" is also stored in another weight file of ${dir}`);
      if (index !== null && file !== VALUE_HEAD_FILE && index.get(name) !== file) {
        throw new ModelFolderError(`${path}: tensor "${name}" is not mapped to ${file} by ${INDEX_FILE} (it maps it to ${index.get(name) ?? "no file"})`);
      }
      checkFinite(path, name, t.data);
      tensors.set(name, { shape: t.shape, data: t.data });
    }
  }
  for (const [name, file] of index ?? []) {
    if (!tensors.has(name)) throw new ModelFolderError(`${join(dir, INDEX_FILE)}: tensor "${name}" is mapped to ${file}, which does not hold it`);
  }
  return { config, hfConfig, tensors, files, dtype: dtypes.size === 1 ? [...dtypes][0]! : "F32" };
}

/**
 * A weight that is NaN or infinite makes every log-prob it touches NaN, which would surface steps
 * later far from its cause; it is refused here, naming the file, the tensor and the first place.
 */
function checkFinite(path: string, name: string, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i]!)) {
      throw new ModelFolderError(`${path}: tensor "${name}" holds ${data[i]} at element ${i}; weights must be finite numbers (a diverged or corrupted checkpoint?)`);
    }
  }
}

/** The weight files to read: model.safetensors or the index's shards, then the value head if saved. */
function weightFiles(dir: string, index: ReadonlyMap<string, string> | null): string[] {
  const single = existsSync(join(dir, WEIGHTS_FILE));
  if (!single && index === null) {
    const hint = existsSync(join(dir, "pytorch_model.bin")) ? " (pytorch_model.bin is not read: convert it to safetensors)" : "";
    throw new ModelFolderError(`${dir}: neither ${WEIGHTS_FILE} nor ${INDEX_FILE} is there${hint}`);
  }
  const files = single ? [WEIGHTS_FILE] : [...new Set(index!.values())];
  if (existsSync(join(dir, VALUE_HEAD_FILE))) files.push(VALUE_HEAD_FILE);
  return files;
}

/** The index's weight_map (tensor name to shard file); shard names must stay inside the folder. */
function readIndex(dir: string): Map<string, string> {
  const path = join(dir, INDEX_FILE);
  const json = readJson(path);
  const map = json.weight_map;
  if (typeof map !== "object" || map === null || Array.isArray(map)) throw new ModelFolderError(`${path}: weight_map is missing or not an object {tensor name: shard file}`);
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(map)) {
    if (typeof file !== "string" || file === "" || basename(file) !== file || file === "." || file === "..") {
      throw new ModelFolderError(`${path}: weight_map["${name}"] is ${JSON.stringify(file)}; expected a file name in the same folder`);
    }
    out.set(name, file);
  }
  return out;
}

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readRegularFile(path).toString("utf8");
  } catch (e) {
    throw new ModelFolderError(`${path}: cannot read it (${(e as Error).message})`);
  }
  try {
    const json = JSON.parse(text);
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not a JSON object");
    return json;
  } catch (e) {
    throw new ModelFolderError(`${path}: not a JSON object (${(e as Error).message})`);
  }
}

export interface ParamsOptions {
  /** The model ties its LM head to the embedding; a checkpoint's lm_head.weight must then equal it. */
  tied?: boolean;
  /** Tensors the checkpoint may lack; they take their values from `fallback`. */
  optional?: (name: string) => boolean;
  /** The model's own initial parameters (getState().params of a fresh model), for optional tensors. */
  fallback?: Float32Array;
}

/**
 * The flat parameter vector for `specs` (the model's tensor list) from a checkpoint's tensors.
 * Missing, unexpected and mis-shaped tensors are errors naming them.
 */
export function paramsFromTensors(specs: readonly TensorInfo[], tensors: ReadonlyMap<string, Tensor>, options: ParamsOptions = {}): Float32Array {
  const total = specs.reduce((n, s) => Math.max(n, s.offset + s.size), 0);
  if (options.fallback !== undefined && options.fallback.length !== total) {
    throw new ModelFolderError(`fallback holds ${options.fallback.length} parameters; the model has ${total}`);
  }
  checkNames(specs, tensors, options);
  const params = new Float32Array(total);
  for (const spec of specs) {
    const t = tensors.get(spec.name);
    if (t === undefined) {
      params.set(options.fallback!.subarray(spec.offset, spec.offset + spec.size), spec.offset);
      continue;
    }
    if (!sameShape(t.shape, spec.shape) || t.data.length !== spec.size) {
      throw new ModelFolderError(`tensor "${spec.name}" has shape [${t.shape.join(", ")}] in the checkpoint; the model expects [${spec.shape.join(", ")}]`);
    }
    params.set(t.data, spec.offset);
  }
  return params;
}

/** Every required tensor present, nothing extra (a tied lm_head only when it equals the embedding). */
function checkNames(specs: readonly TensorInfo[], tensors: ReadonlyMap<string, Tensor>, options: ParamsOptions): void {
  checkNameSet(specs, tensors, options);
  const fallbackNeeded = specs.some((s) => !tensors.has(s.name));
  if (fallbackNeeded && options.fallback === undefined) {
    throw new ModelFolderError("optional tensors are missing from the checkpoint and no fallback parameters were given to initialise them");
  }
  if (options.tied && tensors.has(LM_HEAD)) checkTiedHead(tensors);
}

/**
 * Names only: every required tensor there, nothing extra. Both lists are given when both are
 * wrong, so a folder of another architecture is named by what it has (Qwen3's q_norm/k_norm) as
 * well as by what it lacks.
 */
function checkNameSet(specs: readonly TensorInfo[], tensors: ReadonlyMap<string, unknown>, options: ParamsOptions): void {
  const wanted = new Set(specs.map((s) => s.name));
  const missing = specs.filter((s) => !tensors.has(s.name) && !(options.optional?.(s.name) ?? false)).map((s) => s.name);
  const extra = [...tensors.keys()].filter((n) => !wanted.has(n) && !(options.tied && n === LM_HEAD));
  const lacks = `lacks ${missing.length} tensor(s) the model needs: ${listed(missing)}`;
  const has = `has ${extra.length} tensor(s) the model does not: ${listed(extra)}`;
  if (missing.length > 0 && extra.length > 0) throw new ModelFolderError(`the checkpoint ${lacks}; and it ${has} (does config.json name the right architecture?)`);
  if (missing.length > 0) throw new ModelFolderError(`the checkpoint ${lacks}`);
  if (extra.length > 0) throw new ModelFolderError(`the checkpoint ${has}`);
}

/**
 * Checks a folder's tensor names and shapes against the model its config.json describes, from
 * the weight files' headers alone (no weights read; each file a regular file whose safetensors
 * header fits its size, so a FIFO, a link to /dev/zero or a truncated file is refused at once),
 * so a folder that cannot load is refused before anything is started.
 */
export function checkFolderTensors(dir: string, config: LlamaModelConfig): void {
  const index = existsSync(join(dir, WEIGHTS_FILE)) || !existsSync(join(dir, INDEX_FILE)) ? null : readIndex(dir);
  const shapes = new Map<string, readonly number[]>();
  for (const file of weightFiles(dir, index)) {
    for (const [name, t] of checkSafetensorsFile(join(dir, file))) shapes.set(name, t.shape);
  }
  const specs = llamaTensors({ ...config, valueHead: true });
  checkNameSet(specs, shapes, { tied: config.tiedEmbeddings, optional: isValueHeadTensor });
  for (const spec of specs) {
    const shape = shapes.get(spec.name);
    if (shape !== undefined && !sameShape(shape, spec.shape)) {
      throw new ModelFolderError(`tensor "${spec.name}" has shape [${shape.join(", ")}] in the checkpoint; the model expects [${spec.shape.join(", ")}]`);
    }
  }
}

function checkTiedHead(tensors: ReadonlyMap<string, Tensor>): void {
  const head = tensors.get(LM_HEAD)!, embed = tensors.get(EMBED_TOKENS);
  const equal = embed !== undefined && sameShape(head.shape, embed.shape) && head.data.every((v, i) => Object.is(v, embed.data[i]));
  if (!equal) {
    throw new ModelFolderError(`tensor "${LM_HEAD}" differs from "${EMBED_TOKENS}" although the embeddings are tied; a tied model cannot hold a separate LM head (load it with tie_word_embeddings false)`);
  }
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, 8).map((n) => `"${n}"`).join(", ");
  return names.length > 8 ? `${shown} and ${names.length - 8} more` : shown;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export interface SaveOptions extends Omit<ToHfOptions, "torchDtype"> {
  /** Weight dtype; default "F32" (exact). "BF16" and "F16" round to nearest even and halve the size. */
  dtype?: WritableDtype;
}

/** Half precision's largest finite value; from 65520 on, rounding gives infinity. */
const F16_MAX = 65504;

/** A weight that float16 would turn into infinity is refused, naming the tensor, before anything is written. */
function checkHalfRange(tensors: ReadonlyArray<[string, Tensor]>): void {
  for (const [name, t] of tensors) {
    const i = t.data.findIndex((v) => Math.abs(v) >= F16_MAX + 16);
    if (i >= 0) {
      throw new ModelFolderError(`tensor "${name}" holds ${t.data[i]} at index ${i}, beyond float16's largest finite value ${F16_MAX}: ` +
        "it would be saved as infinity; save as BF16 or F32 (checkpoint.hf_dtype bf16 or f32)");
    }
  }
}

/** config.json's torch_dtype for each stored dtype. */
const TORCH_DTYPES: Readonly<Record<WritableDtype, "float32" | "bfloat16" | "float16">> = { F32: "float32", BF16: "bfloat16", F16: "float16" };

/**
 * Writes config.json and model.safetensors (every tensor but the value head, which goes to
 * value_head.safetensors when the model has one, and is removed from the folder when it has
 * not). Files are written durably.
 */
export function saveHfModel(dir: string, config: LlamaModelConfig, specs: readonly TensorInfo[], params: Float32Array, options: SaveOptions = {}): void {
  const dtype = options.dtype ?? "F32";
  const json = hfConfigFromModel(config, { ...options, torchDtype: TORCH_DTYPES[dtype] });
  const total = specs.reduce((n, s) => Math.max(n, s.offset + s.size), 0);
  if (params.length !== total) throw new ModelFolderError(`params holds ${params.length} values; the tensor list covers ${total}`);
  const causalLm = new Map<string, Tensor>(), valueHead = new Map<string, Tensor>();
  for (const s of specs) {
    (isValueHeadTensor(s.name) ? valueHead : causalLm).set(s.name, { shape: [...s.shape], data: params.subarray(s.offset, s.offset + s.size) });
  }
  if (dtype === "F16") checkHalfRange([...causalLm, ...valueHead]);
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, WEIGHTS_FILE), causalLm, { dtype, metadata: { ...HF_METADATA } });
  // A value head left from an earlier save would be read back as part of this model.
  if (valueHead.size > 0) writeSafetensors(join(dir, VALUE_HEAD_FILE), valueHead, { dtype, metadata: { ...HF_METADATA } });
  else rmSync(join(dir, VALUE_HEAD_FILE), { force: true });
  writeFileDurably(join(dir, CONFIG_FILE), JSON.stringify(json, null, 2) + "\n");
}
