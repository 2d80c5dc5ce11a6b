/**
 * Hugging Face model folders without the addon: save and load round trips (F32 exact, BF16
 * rounded), sharded indexes, tied heads, the value head kept apart, optional tensors, and every
 * refusal with its message. The tensor list follows the runtime's Llama contract.
 */
import { describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LlamaModelConfig } from "../../native/hf/config.ts";
import {
  checkFolderTensors,
  isValueHeadTensor,
  loadHfModel,
  ModelFolderError,
  paramsFromTensors,
  saveHfModel,
  VALUE_HEAD_FILE,
} from "../../native/hf/model_folder.ts";
import { bf16ToFloat32, f16ToFloat32, float32ToBf16, float32ToF16, readSafetensors, type Tensor, writeSafetensors } from "../../native/hf/safetensors.ts";
import { tempDir } from "../helpers/tmp.ts";
import { llamaTensorSpecs, seededParams } from "./reference/llama_specs.ts";

const LLAMA: LlamaModelConfig = {
  arch: "llama", vocab: 20, context: 16, width: 8, layers: 2, heads: 2, kvHeads: 1, intermediate: 12, ropeTheta: 10000, normEps: 1e-5,
  tiedEmbeddings: false, attentionBias: false, headDim: 4, qkNorm: false, ropeScaling: null, valueHead: false, seed: 0,
};
const QWEN2: LlamaModelConfig = { ...LLAMA, tiedEmbeddings: true, attentionBias: true };
/** Qwen3's shape: q/k norms, 2 heads of 6 on a width of 8. */
const QWEN3: LlamaModelConfig = { ...LLAMA, tiedEmbeddings: true, headDim: 6, qkNorm: true };

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** A saved folder, its spec list and the parameters saved. */
function savedFolder(config: LlamaModelConfig, seed: number, dtype: "F32" | "BF16" | "F16" = "F32") {
  const dir = tempDir("hf-folder-");
  const specs = llamaTensorSpecs(config);
  const params = seededParams(specs, seed);
  saveHfModel(dir, config, specs, params, { dtype, bosTokenId: 1, eosTokenId: 2 });
  return { dir, specs, params };
}

/** Tensors for a spec list, as a checkpoint would hold them. */
function tensorsOf(specs: ReturnType<typeof llamaTensorSpecs>, params: Float32Array): Map<string, Tensor> {
  return new Map(specs.map((s) => [s.name, { shape: [...s.shape], data: params.slice(s.offset, s.offset + s.size) }]));
}

describe("save and load", () => {
  test("F32: a saved folder loads back bit-exact, with its config", () => {
    const { dir, specs, params } = savedFolder(LLAMA, 1);
    const hf = loadHfModel(dir);
    expect(hf.config).toEqual(LLAMA);
    expect(hf.hfConfig).toMatchObject({ architectures: ["LlamaForCausalLM"], bos_token_id: 1, eos_token_id: 2, torch_dtype: "float32" });
    expect(readSafetensors(join(dir, "model.safetensors")).metadata).toEqual({ format: "pt" });
    expect(bits(paramsFromTensors(specs, hf.tensors))).toEqual(bits(params));
  });

  test("BF16: weights come back rounded to nearest even, torch_dtype says bfloat16", () => {
    const { dir, specs, params } = savedFolder(QWEN2, 2, "BF16");
    const hf = loadHfModel(dir);
    expect(hf.hfConfig.torch_dtype).toBe("bfloat16");
    expect(hf.tensors.has("lm_head.weight")).toBe(false);
    expect(bits(paramsFromTensors(specs, hf.tensors, { tied: true }))).toEqual(bits(bf16ToFloat32(float32ToBf16(params))));
  });

  test("the folder's dtype is reported (what an export keeps); F16 is written as torch rounds it", () => {
    expect(loadHfModel(savedFolder(LLAMA, 3).dir).dtype).toBe("F32");
    expect(loadHfModel(savedFolder(QWEN2, 3, "BF16").dir).dtype).toBe("BF16");
    const { dir, specs, params } = savedFolder(QWEN3, 3, "F16");
    const hf = loadHfModel(dir);
    expect([hf.dtype, hf.hfConfig.torch_dtype, hf.hfConfig.architectures]).toEqual(["F16", "float16", ["Qwen3ForCausalLM"]]);
    expect(hf.config).toEqual(QWEN3);
    expect(bits(paramsFromTensors(specs, hf.tensors, { tied: true }))).toEqual(bits(f16ToFloat32(float32ToF16(params))));
  });

  test("F16: a weight float16 would make infinite is refused naming the tensor, and nothing is written", () => {
    const specs = llamaTensorSpecs(LLAMA);
    const params = seededParams(specs, 8);
    const norm = specs.find((s) => s.name === "model.norm.weight")!;
    params[norm.offset + 3] = -70000;
    const dir = join(tempDir("hf-f16-"), "out");
    expect(() => saveHfModel(dir, LLAMA, specs, params, { dtype: "F16" })).toThrow(
      'tensor "model.norm.weight" holds -70000 at index 3, beyond float16\'s largest finite value 65504: it would be saved as infinity; save as BF16 or F32 (checkpoint.hf_dtype bf16 or f32)',
    );
    expect(existsSync(dir)).toBe(false);
    params[norm.offset + 3] = 65519; // rounds to 65504: finite, accepted
    saveHfModel(dir, LLAMA, specs, params, { dtype: "F16" });
    expect(loadHfModel(dir).tensors.get("model.norm.weight")!.data[3]).toBe(65504);
  });

  test("a sharded folder (index plus two shards) loads like a single file", () => {
    const dir = tempDir("hf-shards-");
    const specs = llamaTensorSpecs(LLAMA);
    const params = seededParams(specs, 3);
    const all = tensorsOf(specs, params);
    const names = [...all.keys()];
    const half = Math.ceil(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((part, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(dir, file), new Map(part.map((n) => [n, all.get(n)!])), { metadata: { format: "pt" } });
      for (const n of part) weightMap[n] = file;
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: params.length * 4 }, weight_map: weightMap }));
    saveHfModelConfigOnly(dir);
    const hf = loadHfModel(dir);
    expect(hf.files).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
    expect(bits(paramsFromTensors(specs, hf.tensors))).toEqual(bits(params));
  });

  test("the value head is saved in its own file and read back; a later save without one removes it", () => {
    const config = { ...LLAMA, valueHead: true };
    const { dir, specs, params } = savedFolder(config, 4);
    expect(readSafetensors(join(dir, "model.safetensors")).tensors.has("value_head.w")).toBe(false);
    expect([...readSafetensors(join(dir, VALUE_HEAD_FILE)).tensors.keys()]).toEqual(["value_head.w", "value_head.b"]);
    const hf = loadHfModel(dir, { valueHead: true });
    expect(hf.config.valueHead).toBe(true);
    expect(bits(paramsFromTensors(specs, hf.tensors))).toEqual(bits(params));
    const policySpecs = llamaTensorSpecs(LLAMA);
    saveHfModel(dir, LLAMA, policySpecs, seededParams(policySpecs, 5));
    expect(existsSync(join(dir, VALUE_HEAD_FILE))).toBe(false);
  });

  test("a critic from a policy checkpoint takes its value head from the fallback (its own init)", () => {
    const { dir } = savedFolder(LLAMA, 6);
    const criticSpecs = llamaTensorSpecs({ ...LLAMA, valueHead: true });
    const init = seededParams(criticSpecs, 7);
    const params = paramsFromTensors(criticSpecs, loadHfModel(dir).tensors, { optional: isValueHeadTensor, fallback: init });
    const head = criticSpecs.find((s) => s.name === "value_head.w")!;
    expect(bits(params.subarray(head.offset, head.offset + head.size))).toEqual(bits(init.subarray(head.offset, head.offset + head.size)));
  });

  test("a tied checkpoint may carry lm_head.weight when it equals the embedding", () => {
    const specs = llamaTensorSpecs(QWEN2);
    const params = seededParams(specs, 8);
    const tensors = tensorsOf(specs, params);
    tensors.set("lm_head.weight", { ...tensors.get("model.embed_tokens.weight")! });
    expect(bits(paramsFromTensors(specs, tensors, { tied: true }))).toEqual(bits(params));
  });
});

/** config.json alone, for folders whose weights a test writes by hand. */
function saveHfModelConfigOnly(dir: string): void {
  const tmp = tempDir("hf-cfg-");
  const specs = llamaTensorSpecs(LLAMA);
  saveHfModel(tmp, LLAMA, specs, new Float32Array(specs.reduce((n, s) => n + s.size, 0)));
  writeFileSync(join(dir, "config.json"), readFileSync(join(tmp, "config.json")));
}

describe("a folder's tensors are checked from the headers alone, before anything starts", () => {
  test("a folder that matches its config.json passes, Qwen3's q/k norms included", () => {
    for (const c of [LLAMA, QWEN2, QWEN3]) expect(() => checkFolderTensors(savedFolder(c, 4).dir, c)).not.toThrow();
  });

  test("a Qwen3 folder read as Qwen2 is refused naming the q/k norms it has and the biases it lacks", () => {
    const { dir } = savedFolder(QWEN3, 5);
    const asQwen2 = { ...QWEN2, headDim: 6 };
    expect(() => checkFolderTensors(dir, asQwen2)).toThrow(ModelFolderError);
    expect(() => checkFolderTensors(dir, asQwen2)).toThrow(/lacks 6 tensor\(s\) the model needs: "model\.layers\.0\.self_attn\.q_proj\.bias".*; and it has 4 tensor\(s\) the model does not: "model\.layers\.0\.self_attn\.q_norm\.weight", "model\.layers\.0\.self_attn\.k_norm\.weight"/);
  });

  test("a Qwen3 folder without k_norm, or with q_norm of the wrong size, is refused naming the tensor", () => {
    const specs = llamaTensorSpecs(QWEN3);
    const params = seededParams(specs, 6);
    const noKNorm = tempDir("hf-no-knorm-");
    saveHfModel(noKNorm, QWEN3, specs.filter((s) => s.name !== "model.layers.1.self_attn.k_norm.weight"), params);
    expect(() => checkFolderTensors(noKNorm, QWEN3)).toThrow('the checkpoint lacks 1 tensor(s) the model needs: "model.layers.1.self_attn.k_norm.weight"');
    const { dir } = savedFolder(QWEN3, 6);
    expect(() => checkFolderTensors(dir, { ...QWEN3, headDim: 4 })).toThrow(/tensor "model\.layers\.0\.self_attn\.q_proj\.weight" has shape \[12, 8\] in the checkpoint; the model expects \[8, 8\]/);
  });

  test("a weight file with a dtype the loader cannot read is refused naming the tensor", () => {
    const { dir } = savedFolder(LLAMA, 7);
    const path = join(dir, "model.safetensors");
    const bytes = readFileSync(path);
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
    // Same length, so the data offsets stay valid: only the norm's dtype changes, F32 to I32.
    const header = bytes.subarray(8, 8 + length).toString().replace(/("model\.norm\.weight":\{"dtype":)"F32"/, '$1"I32"');
    writeFileSync(path, Buffer.concat([bytes.subarray(0, 8), Buffer.from(header), bytes.subarray(8 + length)]));
    expect(() => checkFolderTensors(dir, LLAMA)).toThrow(`${path}: tensor "model.norm.weight": dtype I32 is not supported; readable dtypes are F32, F16, BF16`);
  });
});

describe("refusals name the tensor or file and what is expected", () => {
  const specs = llamaTensorSpecs(LLAMA);
  const params = seededParams(specs, 9);

  test("a missing tensor", () => {
    const t = tensorsOf(specs, params);
    t.delete("model.layers.1.mlp.up_proj.weight");
    expect(() => paramsFromTensors(specs, t)).toThrow(ModelFolderError);
    expect(() => paramsFromTensors(specs, t)).toThrow('the checkpoint lacks 1 tensor(s) the model needs: "model.layers.1.mlp.up_proj.weight"');
  });

  test("an extra tensor", () => {
    const t = tensorsOf(specs, params);
    t.set("model.layers.0.self_attn.o_proj.bias", { shape: [8], data: new Float32Array(8) });
    expect(() => paramsFromTensors(specs, t)).toThrow('the checkpoint has 1 tensor(s) the model does not: "model.layers.0.self_attn.o_proj.bias"');
  });

  test("a mis-shaped tensor (transposed)", () => {
    const t = tensorsOf(specs, params);
    t.set("model.layers.0.mlp.down_proj.weight", { shape: [12, 8], data: new Float32Array(96) });
    expect(() => paramsFromTensors(specs, t)).toThrow('tensor "model.layers.0.mlp.down_proj.weight" has shape [12, 8] in the checkpoint; the model expects [8, 12]');
  });

  test("an lm_head.weight that differs from the tied embedding", () => {
    const tied = llamaTensorSpecs(QWEN2);
    const t = tensorsOf(tied, seededParams(tied, 10));
    t.set("lm_head.weight", { shape: [20, 8], data: new Float32Array(160) });
    expect(() => paramsFromTensors(tied, t, { tied: true })).toThrow(/tensor "lm_head\.weight" differs from "model\.embed_tokens\.weight" although the embeddings are tied/);
    expect(() => paramsFromTensors(tied, t)).toThrow('the checkpoint has 1 tensor(s) the model does not: "lm_head.weight"');
  });

  test("optional tensors missing without fallback parameters, or a fallback of the wrong size", () => {
    const critic = llamaTensorSpecs({ ...LLAMA, valueHead: true });
    const t = tensorsOf(specs, params);
    expect(() => paramsFromTensors(critic, t, { optional: isValueHeadTensor })).toThrow(/no fallback parameters were given/);
    expect(() => paramsFromTensors(critic, t, { optional: isValueHeadTensor, fallback: new Float32Array(3) })).toThrow(/fallback holds 3 parameters; the model has \d+/);
  });

  test("a folder without weights (and the hint for pytorch_model.bin)", () => {
    const dir = tempDir("hf-empty-");
    saveHfModelConfigOnly(dir);
    expect(() => loadHfModel(dir)).toThrow(`${dir}: neither model.safetensors nor model.safetensors.index.json is there`);
    writeFileSync(join(dir, "pytorch_model.bin"), "");
    expect(() => loadHfModel(dir)).toThrow(/pytorch_model\.bin is not read: convert it to safetensors/);
  });

  test("non-finite weights are refused at load, naming the file, the tensor and the element", () => {
    const { dir, specs, params } = savedFolder(LLAMA, 12);
    const norm = specs.find((s) => s.name === "model.norm.weight")!;
    for (const bad of [NaN, Infinity, -Infinity]) {
      const broken = params.slice();
      broken[norm.offset + 3] = bad;
      saveHfModel(dir, LLAMA, specs, broken);
      expect(() => loadHfModel(dir)).toThrow(`${join(dir, "model.safetensors")}: tensor "model.norm.weight" holds ${bad} at element 3; weights must be finite numbers`);
    }
  });

  test("a config.json that is a FIFO is refused at once, not waited on", () => {
    const dir = tempDir("hf-fifo-");
    execFileSync("mkfifo", [join(dir, "config.json")]);
    expect(() => loadHfModel(dir)).toThrow(`${join(dir, "config.json")}: cannot read it (${join(dir, "config.json")} is a FIFO (named pipe); expected a regular file)`);
  });

  test("a folder without config.json, or with one that is not JSON", () => {
    const dir = tempDir("hf-nocfg-");
    expect(() => loadHfModel(dir)).toThrow(/config\.json: cannot read it/);
    writeFileSync(join(dir, "config.json"), "{");
    expect(() => loadHfModel(dir)).toThrow(/config\.json: not a JSON object/);
  });

  describe("sharded indexes", () => {
    /** A two-shard folder whose index the test then edits. */
    function shardedFolder(editMap: (map: Record<string, string>) => void) {
      const dir = tempDir("hf-badidx-");
      saveHfModelConfigOnly(dir);
      const all = tensorsOf(specs, params);
      const names = [...all.keys()];
      writeSafetensors(join(dir, "a.safetensors"), new Map(names.slice(0, 5).map((n) => [n, all.get(n)!])));
      writeSafetensors(join(dir, "b.safetensors"), new Map(names.slice(5).map((n) => [n, all.get(n)!])));
      const map: Record<string, string> = Object.fromEntries(names.map((n, i) => [n, i < 5 ? "a.safetensors" : "b.safetensors"]));
      editMap(map);
      writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: map }));
      return dir;
    }

    test("a well-formed index loads", () => {
      expect(bits(paramsFromTensors(specs, loadHfModel(shardedFolder(() => {})).tensors))).toEqual(bits(params));
    });

    test("a tensor found in a shard the index does not map it to", () => {
      const dir = shardedFolder((m) => (m["model.embed_tokens.weight"] = "b.safetensors"));
      expect(() => loadHfModel(dir)).toThrow(/a\.safetensors: tensor "model\.embed_tokens\.weight" is not mapped to a\.safetensors by model\.safetensors\.index\.json \(it maps it to b\.safetensors\)/);
    });

    test("a mapped tensor its shard does not hold", () => {
      const dir = shardedFolder((m) => (m["model.layers.9.mlp.up_proj.weight"] = "a.safetensors"));
      expect(() => loadHfModel(dir)).toThrow(/tensor "model\.layers\.9\.mlp\.up_proj\.weight" is mapped to a\.safetensors, which does not hold it/);
    });

    test("a shard name that leaves the folder", () => {
      const dir = shardedFolder((m) => (m["model.norm.weight"] = "../b.safetensors"));
      expect(() => loadHfModel(dir)).toThrow('weight_map["model.norm.weight"] is "../b.safetensors"; expected a file name in the same folder');
    });

    test("an index without weight_map", () => {
      const dir = shardedFolder(() => {});
      writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {} }));
      expect(() => loadHfModel(dir)).toThrow(/weight_map is missing or not an object/);
    });
  });

  test("saving params that do not cover the tensor list", () => {
    expect(() => saveHfModel(tempDir("hf-bad-"), LLAMA, specs, new Float32Array(5))).toThrow(/params holds 5 values; the tensor list covers \d+/);
  });
});
