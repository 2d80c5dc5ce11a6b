#!/usr/bin/python3
"""Independent PyTorch reference for the runtime's LoRA adapters and their PEFT export.

Builds on llama_reference.py (same folder): its model, folders and PPO loss. A LoRA adapter is
written here as PEFT computes it, unmerged: base(x) + scale * lora_B(lora_A(x)), with
scale = lora_alpha / r (lora_alpha / sqrt(r) with use_rslora), all in float64.

  lora_reference.py base OUT_DIR --seed N
      Saves tiny random base models as Hugging Face folders under OUT_DIR (llama_gqa, qwen3_tied).

  lora_reference.py case BASE_DIR ADAPTER_DIR OUT_FILE --seed N [--merged MERGED_DIR]
      Reads ADAPTER_DIR as PEFT would (adapter_config.json: peft_type LORA, task_type CAUSAL_LM;
      adapter_model.safetensors: exactly one lora_A [r, in] and lora_B [out, r] per targeted
      projection of every layer, under PEFT's names), puts the adapters on BASE_DIR's model and
      writes OUT_FILE: for a random token batch, the log-probs and the gradient of one PPO policy
      loss with respect to every lora_A and lora_B (by PEFT name). With --merged, also checks
      MERGED_DIR (a full folder) against W + scale * B @ A computed here in float64, and reports
      the largest difference relative to each tensor's largest entry.
"""
import argparse
import json
import math
import os
import re
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_reference as ref  # noqa: E402

PREFIX = "base_model.model."
ATTN = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP = ("gate_proj", "up_proj", "down_proj")


class LoraLinear(torch.nn.Module):
    """PEFT's LoRA Linear: the frozen base layer plus scale * B(A(x)); A and B are leaves."""

    def __init__(self, base, A, B, scale):
        super().__init__()
        self.base, self.A, self.B, self.scale = base, A, B, scale

    def forward(self, x):
        return self.base(x) + self.scale * ((x @ self.A.t()) @ self.B.t())


def base(out, seed):
    gen = torch.Generator().manual_seed(seed)
    for name, cfg in (("llama_gqa", ref.LLAMA), ("qwen3_tied", ref.QWEN3)):
        model = ref.random_model(ref.normalise_config(cfg), gen)
        ref.save_folder(os.path.join(out, name), cfg, model)


def read_adapter(adapter_dir, cfg, state):
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        ac = json.load(f)
    assert ac["peft_type"] == "LORA" and ac["task_type"] == "CAUSAL_LM", ac
    r, alpha = ac["r"], ac["lora_alpha"]
    scale = alpha / math.sqrt(r) if ac.get("use_rslora") else alpha / r
    tensors = ref.read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    expected = {}
    for l in range(cfg["num_hidden_layers"]):
        for m in ac["target_modules"]:
            path = f"model.layers.{l}.{'self_attn' if m in ATTN else 'mlp'}.{m}"
            out_dim, in_dim = state[path + ".weight"].shape
            expected[f"{PREFIX}{path}.lora_A.weight"] = (r, in_dim)
            expected[f"{PREFIX}{path}.lora_B.weight"] = (out_dim, r)
    got = {n: tuple(t.shape) for n, t in tensors.items()}
    if got != expected:
        raise ValueError(f"adapter tensors differ from PEFT's layout: missing {sorted(set(expected) - set(got))}, "
                         f"extra {sorted(set(got) - set(expected))}, shapes {[(n, got[n], expected[n]) for n in got if n in expected and got[n] != expected[n]]}")
    return ac, scale, tensors


def case(base_dir, adapter_dir, out_file, seed, merged_dir):
    cfg, model, state = ref.load_folder(base_dir)
    ac, scale, tensors = read_adapter(adapter_dir, cfg, state)
    model64 = ref.CausalLM(cfg).double()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    for p in model64.parameters():
        p.requires_grad_(False)
    params = {}
    for name, t in tensors.items():
        if name.endswith(".lora_A.weight"):
            path = name[len(PREFIX):-len(".lora_A.weight")]
            A = t.double().clone().requires_grad_(True)
            B = tensors[name.replace("lora_A", "lora_B")].double().clone().requires_grad_(True)
            params[name], params[name.replace("lora_A", "lora_B")] = A, B
            parent_path, attr = path.rsplit(".", 1)
            parent = model64.get_submodule(parent_path)
            setattr(parent, attr, LoraLinear(getattr(parent, attr), A, B, scale))
    gen = torch.Generator().manual_seed(seed)
    out = ref.reference_case("lora", base_dir, model64, params, cfg["vocab_size"], gen)
    out["scale"] = scale
    if merged_dir:
        merged = ref.read_safetensors(os.path.join(merged_dir, "model.safetensors"))
        assert set(merged) == set(state), "the merged folder holds other tensors than its base"
        worst = 0.0
        for name, w in state.items():
            want = w.double()
            a = PREFIX + name.replace(".weight", ".lora_A.weight")
            if a in tensors:
                want = want + scale * (tensors[a.replace("lora_A", "lora_B")].double() @ tensors[a].double())
            err = (merged[name].double() - want).abs().max().item() / max(want.abs().max().item(), 1e-30)
            worst = max(worst, err)
        out["merged_error"] = worst
    with open(out_file, "w") as f:
        json.dump(out, f)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("base")
    b.add_argument("out")
    b.add_argument("--seed", type=int, required=True)
    c = sub.add_parser("case")
    c.add_argument("base")
    c.add_argument("adapter")
    c.add_argument("out")
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--merged")
    a = p.parse_args()
    torch.set_grad_enabled(True)
    if a.cmd == "base":
        base(a.out, a.seed)
    else:
        case(a.base, a.adapter, a.out, a.seed, a.merged)


if __name__ == "__main__":
    main()
