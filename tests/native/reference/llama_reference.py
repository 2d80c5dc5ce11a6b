#!/usr/bin/python3
"""Independent PyTorch reference for the runtime's Llama-family model and its Hugging Face folders.

Pure torch (no transformers, no safetensors package): a small Llama/Qwen2/Qwen3 causal LM that
mirrors transformers' semantics (RMSNorm x * rsqrt(mean(x^2) + eps) * w, rotate_half RoPE with
Llama 3's rope scaling when config.json has it, SwiGLU, GQA by repeating each key/value head for
its group of query heads, causal softmax attention scaled by 1/sqrt(head_dim), optional q/k/v
biases, Qwen3's per-head q_norm/k_norm before RoPE and head_dim of its own, optional tied
embeddings), with parameter names and shapes exactly transformers' own, and a minimal
safetensors reader and writer.

  llama_reference.py generate OUT_DIR --seed N
      Builds tiny random models, saves each as a Hugging Face folder under OUT_DIR and writes
      OUT_DIR/reference.json: for a fixed token batch, logits, per-token log-probs of the next
      token and the gradient of one PPO policy loss (as native/src/core/ppo.cc defines it) with
      respect to every parameter, all computed in float64 from the weights as saved.

  llama_reference.py dump MODEL_DIR OUT_FILE [--bf16-of F32_MODEL_DIR | --f16-of F32_MODEL_DIR]
      Loads a folder the way transformers would (config.json, then model.safetensors or the
      sharded index; every weight present with its exact shape and nothing extra, metadata
      format "pt") and writes its weights as float32 safetensors to OUT_FILE. With --bf16-of
      (--f16-of), also checks that MODEL_DIR's weights are exactly F32_MODEL_DIR's rounded by
      torch to bf16 (f16) and that config.json's torch_dtype says so.

  llama_reference.py gpt2 FOLDER --seed N
      The same log-probs, loss and gradients for the runtime's built-in GPT-2 style model, from
      FOLDER/config.json ({vocab, context, width, layers, heads}) and FOLDER/params.safetensors
      (the runtime's tensor names), into FOLDER/reference.json.

Position convention of the log-probs and the loss (native/src/core/model.h): entry t (t >= 1)
is about token t and comes from the logits at position t-1; entry 0 and entries whose mask is 0
are 0, and the loss normalises by the summed mask over t >= 1.
"""
import argparse
import json
import math
import os
import struct
import sys

import torch

# ---------------------------------------------------------------------------------------------
# safetensors

DTYPES = {"F32": (torch.float32, 4), "BF16": (torch.bfloat16, 2), "F16": (torch.float16, 2)}
NAMES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16"}


def write_safetensors(path, tensors, dtype=torch.float32):
    """tensors: ordered dict name -> tensor. Data is 8-byte aligned after a space-padded header."""
    header = {"__metadata__": {"format": "pt"}}
    blobs, offset = [], 0
    for name, t in tensors.items():
        t = t.detach().to(dtype).contiguous()
        raw = t.view(torch.int16).numpy().tobytes() if dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": NAMES[dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
    return offset


def read_safetensors(path, need_format=True):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    if need_format and meta.get("format") != "pt":
        raise ValueError(f"{path}: __metadata__.format is {meta.get('format')!r}; transformers needs 'pt'")
    out = {}
    for name, e in header.items():
        if e["dtype"] not in DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {e['dtype']}")
        dtype, _ = DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        raw = bytearray(data[8 + n + b : 8 + n + end])
        t = torch.frombuffer(raw, dtype=torch.int16).view(dtype) if dtype != torch.float32 else torch.frombuffer(raw, dtype=dtype)
        out[name] = t.reshape(e["shape"]).clone()
    return out


# ---------------------------------------------------------------------------------------------
# The model, named and shaped as transformers' LlamaForCausalLM / Qwen2ForCausalLM.


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama3_inv_freq(inv_freq, scaling):
    """transformers' _compute_llama3_parameters (modeling_rope_utils.py), in float64."""
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen = old_context_len / low
    high_freq_wavelen = old_context_len / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low) / (high - low)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)


def rope_cos_sin(T, hd, theta, dtype, scaling=None):
    inv_freq = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    if scaling is not None:
        inv_freq = llama3_inv_freq(inv_freq, scaling)
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos().to(dtype), emb.sin().to(dtype)


class Attention(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.nh, self.nkv, self.hd = nh, nkv, cfg["_head_dim"]
        bias = cfg["_qkv_bias"]
        self.q_proj = torch.nn.Linear(C, nh * self.hd, bias=bias)
        self.k_proj = torch.nn.Linear(C, nkv * self.hd, bias=bias)
        self.v_proj = torch.nn.Linear(C, nkv * self.hd, bias=bias)
        self.o_proj = torch.nn.Linear(nh * self.hd, C, bias=False)
        self.qk_norm = cfg["_qk_norm"]
        if self.qk_norm:  # Qwen3: RMSNorm over each head's head_dim values, before RoPE
            self.q_norm = RMSNorm(self.hd, cfg["rms_norm_eps"])
            self.k_norm = RMSNorm(self.hd, cfg["rms_norm_eps"])

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.nh // self.nkv  # key/value head j serves query heads j*rep .. j*rep+rep-1
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = q @ k.transpose(2, 3) / math.sqrt(self.hd)
        causal = torch.ones(T, T, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.nh * self.hd))


class MLP(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        C, I = cfg["hidden_size"], cfg["intermediate_size"]
        self.gate_proj = torch.nn.Linear(C, I, bias=False)
        self.up_proj = torch.nn.Linear(C, I, bias=False)
        self.down_proj = torch.nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])
        self.mlp = MLP(cfg)

    def forward(self, h, cos, sin):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin)
        return h + self.mlp(self.post_attention_layernorm(h))


class Trunk(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(cfg["vocab_size"], cfg["hidden_size"])
        self.layers = torch.nn.ModuleList(Layer(cfg) for _ in range(cfg["num_hidden_layers"]))
        self.norm = RMSNorm(cfg["hidden_size"], cfg["rms_norm_eps"])


class CausalLM(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = Trunk(cfg)
        self.tied = cfg["tie_word_embeddings"]
        if not self.tied:
            self.lm_head = torch.nn.Linear(cfg["hidden_size"], cfg["vocab_size"], bias=False)

    def forward(self, tokens):
        T = tokens.shape[1]
        h = self.model.embed_tokens(tokens)
        cos, sin = rope_cos_sin(T, self.cfg["_head_dim"], self.cfg["rope_theta"], h.dtype, self.cfg.get("rope_scaling"))
        for layer in self.model.layers:
            h = layer(h, cos, sin)
        h = self.model.norm(h)
        head = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return h @ head.t()


def normalise_config(cfg):
    """The keys the model reads, with transformers' defaults and each architecture's bias rule."""
    arch = cfg["architectures"][0]
    assert arch in ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM", "Qwen3ForCausalLM"), arch
    scaling = cfg.get("rope_scaling")
    assert cfg.get("hidden_act", "silu") == "silu" and (scaling is None or scaling.get("rope_type") == "llama3")
    assert not cfg.get("attention_bias", False)  # Llama's and Qwen3's also bias o_proj: not modelled here
    out = dict(cfg)
    out["_head_dim"] = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    out["_qk_norm"] = arch == "Qwen3ForCausalLM"
    out.setdefault("num_key_value_heads", cfg["num_attention_heads"])
    out.setdefault("rope_theta", 10000.0)
    out.setdefault("rms_norm_eps", 1e-6)
    out.setdefault("tie_word_embeddings", False)
    out["_qkv_bias"] = arch == "Qwen2ForCausalLM"
    return out


# ---------------------------------------------------------------------------------------------
# Folders


def save_folder(path, cfg, model, dtype=torch.float32, shards=1):
    os.makedirs(path, exist_ok=True)
    public = {k: v for k, v in cfg.items() if not k.startswith("_")}
    public["torch_dtype"] = {torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtype, "float32")
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(public, f, indent=2)
    state = model.state_dict()
    if shards == 1:
        write_safetensors(os.path.join(path, "model.safetensors"), state, dtype)
        return
    names = list(state)
    per = math.ceil(len(names) / shards)
    weight_map, total = {}, 0
    for s in range(shards):
        file = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: state[n] for n in names[s * per : (s + 1) * per]}
        total += write_safetensors(os.path.join(path, file), part, dtype)
        weight_map.update({n: file for n in part})
    with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def load_folder(path):
    with open(os.path.join(path, "config.json")) as f:
        cfg = normalise_config(json.load(f))
    single = os.path.join(path, "model.safetensors")
    if os.path.exists(single):
        state = read_safetensors(single)
    else:
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            weight_map = json.load(f)["weight_map"]
        state = {}
        for file in sorted(set(weight_map.values())):
            state.update(read_safetensors(os.path.join(path, file)))
    model = CausalLM(cfg)
    expected = model.state_dict()
    for name, t in state.items():
        if name in expected and tuple(t.shape) != tuple(expected[name].shape):
            raise ValueError(f"{path}: {name} has shape {list(t.shape)}, expected {list(expected[name].shape)}")
    model.load_state_dict(state, strict=True)  # every weight present, nothing extra, as transformers
    return cfg, model, state


# ---------------------------------------------------------------------------------------------
# Reference values


def random_model(cfg, gen):
    model = CausalLM(cfg)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):  # input/post_attention_layernorm, q_norm, k_norm, model.norm
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=gen))
            elif name == "model.embed_tokens.weight":
                # A tied embedding is also the LM head: scaled like a projection so the logits
                # stay spread over a few nats rather than one-hot.
                scale = 1 / math.sqrt(p.shape[1]) if cfg["tie_word_embeddings"] else 1.0
                p.copy_(scale * torch.randn(p.shape, generator=gen))
            elif name.endswith(".bias"):
                p.copy_(0.3 * torch.randn(p.shape, generator=gen))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p.shape[1]))
    return model


def f32(t):
    """Rounds to float32 and back: the inputs the runtime receives as Float32Array."""
    return t.to(torch.float32).to(torch.float64)


def ppo_batch(vocab, gen, B, T):
    tokens = torch.randint(0, vocab, (B, T), generator=gen)
    # Mask: the first entry is set on purpose (the runtime ignores entry 0), some entries are
    # 0, one is fractional, so the normalisation by the summed weight is exercised.
    mask = torch.ones(B, T, dtype=torch.float64)
    mask[0, 2] = 0
    mask[1, 1] = 0
    mask[1, 3] = 0.5
    mask[:, T - 1] = torch.tensor([1.0, 0.0])
    adv = f32(torch.where(torch.rand(B, T, generator=gen) < 0.5, -1.0, 1.0) * (0.5 + torch.rand(B, T, generator=gen)))
    # Log-ratio offsets away from the clip boundary (log 0.8, log 1.2), so float32 rounding
    # cannot flip which branch of the clipped objective is active.
    ratio_offsets = torch.tensor([-0.5, -0.05, 0.05, 0.5], dtype=torch.float64)
    ref_offsets = torch.tensor([-0.3, -0.1, 0.1, 0.3], dtype=torch.float64)
    pick = lambda values: values[torch.randint(0, 4, (B, T), generator=gen)]
    return tokens, mask, adv, pick(ratio_offsets), pick(ref_offsets)


def token_logprobs(logits, tokens):
    """[B, T]: entry t is log p(token t | tokens < t) from the logits at t-1; entry 0 is 0."""
    logp = torch.log_softmax(logits, dim=-1)
    out = torch.zeros(tokens.shape, dtype=logits.dtype)
    out[:, 1:] = logp[:, :-1].gather(-1, tokens[:, 1:, None])[..., 0]
    ent = torch.zeros(tokens.shape, dtype=logits.dtype)
    ent[:, 1:] = -(logp[:, :-1].exp() * logp[:, :-1]).sum(-1)
    return out, ent


def ppo_loss(lp, ent, weight, adv, old, ref, hyper):
    """native/src/core/ppo.cc policy_loss, over entries t >= 1 weighted by the mask."""
    w = weight.clone()
    w[:, 0] = 0
    n = w.sum()
    ratio = torch.exp(lp - old)
    l1 = -adv * ratio
    l2 = -adv * ratio.clamp(1 - hyper["clipRatio"], 1 + hyper["clipRatio"])
    pg = torch.where(l2 > l1, l2, l1)  # the clipped branch only when strictly larger, as in ppo.cc
    d = ref - lp
    kl = torch.exp(d) - d - 1
    return ((w * pg).sum() + hyper["klCoef"] * (w * kl).sum() - hyper["entropyCoef"] * (w * ent).sum()) / n


def reference_case(name, folder, forward, params, vocab, gen, B=2, T=10):
    """One case of reference.json: `forward` maps tokens to float64 logits through `params`
    (name -> float64 leaf tensor), whose gradients are recorded under the same names."""
    tokens, mask, adv, ratio_off, ref_off = ppo_batch(vocab, gen, B, T)
    with torch.no_grad():
        logits = forward(tokens)
        lp_all, _ = token_logprobs(logits, tokens)
    # Old and reference log-probs sit at fixed offsets from the current ones, rounded to float32
    # as the runtime receives them; masked entries and entry 0 are 0.
    live = (mask != 0) & (torch.arange(T) >= 1)
    old = f32(torch.where(live, lp_all + ratio_off, torch.zeros_like(lp_all)))
    ref = f32(torch.where(live, lp_all + ref_off, torch.zeros_like(lp_all)))
    hyper = {"clipRatio": 0.2, "klCoef": 0.1, "entropyCoef": 0.01}
    lp, ent = token_logprobs(forward(tokens), tokens)
    loss = ppo_loss(lp, ent, mask, adv, old, ref, hyper)
    for p in params.values():
        p.grad = None
    loss.backward()
    flat = lambda t: t.reshape(-1).tolist()
    return {
        "name": name,
        "folder": folder,
        "batch": {
            "batch": B,
            "seqLen": T,
            "tokens": flat(tokens),
            "mask": flat(mask),
            "advantages": flat(adv),
            "oldLogprobs": flat(old),
            "refLogprobs": flat(ref),
        },
        "hyper": hyper,
        "logits": flat(logits),
        "logprobs": flat(lp_all),
        "loss": loss.item(),
        "grads": {n: flat(p.grad) for n, p in params.items()},
    }


def llama_case(name, cfg, model, gen):
    model64 = CausalLM(cfg).double()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    return reference_case(name, name, model64, dict(model64.named_parameters()), cfg["vocab_size"], gen)


# ---------------------------------------------------------------------------------------------
# The runtime's built-in GPT-2 style model (native/src/core/model.cc), under its own tensor
# names. It checks this reference's PPO loss and position convention against the runtime with
# the architecture every addon has.


def gpt2_forward(P, cfg, tokens):
    B, T = tokens.shape
    C, NH = cfg["width"], cfg["heads"]
    hd = C // NH
    ln = lambda x, pre: torch.nn.functional.layer_norm(x, (C,), P[pre + ".w"], P[pre + ".b"], 1e-5)
    lin = lambda x, pre: x @ P[pre + ".w"].t() + P[pre + ".b"]
    h = P["wte"][tokens] + P["wpe"][:T]
    causal = torch.ones(T, T, dtype=torch.bool).triu(1)
    for l in range(cfg["layers"]):
        p = f"h{l}."
        q, k, v = lin(ln(h, p + "ln1"), p + "attn.qkv").split(C, dim=-1)
        heads = lambda x: x.view(B, T, NH, hd).transpose(1, 2)
        scores = (heads(q) @ heads(k).transpose(2, 3) / math.sqrt(hd)).masked_fill(causal, float("-inf"))
        att = (torch.softmax(scores, dim=-1) @ heads(v)).transpose(1, 2).reshape(B, T, C)
        h = h + lin(att, p + "attn.proj")
        fc = lin(ln(h, p + "ln2"), p + "mlp.fc")
        h = h + lin(torch.nn.functional.gelu(fc, approximate="tanh"), p + "mlp.proj")
    return ln(h, "lnf") @ P["lm_head.w"].t()


def gpt2(folder, seed):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    params = {n: t.double().requires_grad_(True) for n, t in read_safetensors(os.path.join(folder, "params.safetensors"), need_format=False).items()}
    case = reference_case("gpt2", folder, lambda tokens: gpt2_forward(params, cfg, tokens), params, cfg["vocab"], torch.Generator().manual_seed(seed))
    with open(os.path.join(folder, "reference.json"), "w") as f:
        json.dump({"seed": seed, "torch": torch.__version__, "cases": [case]}, f)


LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 64,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "tie_word_embeddings": False,
    "attention_bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}

QWEN2 = {
    "architectures": ["Qwen2ForCausalLM"],
    "model_type": "qwen2",
    "vocab_size": 48,
    "hidden_size": 32,
    "intermediate_size": 40,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "hidden_act": "silu",
    "max_position_embeddings": 32,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "sliding_window": 32,
    "max_window_layers": 2,
    "bos_token_id": 0,
    "eos_token_id": 3,
}


# Qwen3's shape at toy size: 4 heads of 12 on a width of 32 (o_proj [32, 48]), q/k norms, tied.
QWEN3 = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    "vocab_size": 48,
    "hidden_size": 32,
    "head_dim": 12,
    "intermediate_size": 40,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "hidden_act": "silu",
    "max_position_embeddings": 40,
    "rms_norm_eps": 1e-6,
    "rope_theta": 1000000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "tie_word_embeddings": True,
    "use_sliding_window": False,
    "sliding_window": None,
    "max_window_layers": 2,
    "bos_token_id": 0,
    "eos_token_id": 3,
}

# Llama 3.2's shape at toy size: tied, with its rope scaling; head_dim 8 at theta 10000 and an
# original context of 64 put the four frequency pairs in all three regimes (kept, blended, divided).
LLAMA3 = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 40,
    "hidden_size": 32,
    "head_dim": 8,
    "intermediate_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 1,
    "hidden_act": "silu",
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 64, "rope_type": "llama3"},
    "tie_word_embeddings": True,
    "attention_bias": False,
    "mlp_bias": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
}


def bf16_copy(cfg, model):
    """The model as a bf16 folder holds it: every weight rounded by torch to bf16."""
    rounded = CausalLM(cfg)
    rounded.load_state_dict({k: v.to(torch.bfloat16).to(torch.float32) for k, v in model.state_dict().items()})
    return rounded


def generate(out, seed):
    gen = torch.Generator().manual_seed(seed)
    cases = []
    llama_cfg = normalise_config(LLAMA)
    llama = random_model(llama_cfg, gen)
    save_folder(os.path.join(out, "llama_gqa"), LLAMA, llama)
    save_folder(os.path.join(out, "llama_gqa_sharded"), LLAMA, llama, shards=2)
    qwen_cfg = normalise_config(QWEN2)
    qwen = random_model(qwen_cfg, gen)
    save_folder(os.path.join(out, "qwen2_tied"), QWEN2, qwen)
    save_folder(os.path.join(out, "qwen2_tied_bf16"), QWEN2, qwen, dtype=torch.bfloat16)
    qwen3_cfg = normalise_config(QWEN3)
    qwen3 = random_model(qwen3_cfg, gen)
    save_folder(os.path.join(out, "qwen3_tied"), QWEN3, qwen3)
    save_folder(os.path.join(out, "qwen3_tied_bf16"), QWEN3, qwen3, dtype=torch.bfloat16)
    save_folder(os.path.join(out, "qwen3_tied_f16"), QWEN3, qwen3, dtype=torch.float16)
    llama3_cfg = normalise_config(LLAMA3)
    llama3 = random_model(llama3_cfg, gen)
    save_folder(os.path.join(out, "llama3_tied"), LLAMA3, llama3)
    save_folder(os.path.join(out, "llama3_tied_bf16"), LLAMA3, llama3, dtype=torch.bfloat16)
    # A bf16 folder's reference uses the weights as saved: rounded by torch to bf16.
    for name, cfg, model in [("llama_gqa", llama_cfg, llama), ("llama_gqa_sharded", llama_cfg, llama), ("qwen2_tied", qwen_cfg, qwen),
                             ("qwen2_tied_bf16", qwen_cfg, bf16_copy(qwen_cfg, qwen)), ("qwen3_tied", qwen3_cfg, qwen3),
                             ("qwen3_tied_bf16", qwen3_cfg, bf16_copy(qwen3_cfg, qwen3)), ("llama3_tied", llama3_cfg, llama3),
                             ("llama3_tied_bf16", llama3_cfg, bf16_copy(llama3_cfg, llama3))]:
        cases.append(llama_case(name, cfg, model, torch.Generator().manual_seed(seed * 1000 + len(cases))))
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"seed": seed, "torch": torch.__version__, "cases": cases}, f)


def dump(model_dir, out_file, rounded_of, dtype):
    cfg, model, state = load_folder(model_dir)
    write_safetensors(out_file, model.state_dict(), torch.float32)
    if rounded_of is not None:
        want_name = {torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]
        if cfg.get("torch_dtype") != want_name:
            raise ValueError(f"{model_dir}: config.json's torch_dtype is {cfg.get('torch_dtype')!r}, not {want_name!r}")
        _, _, f32_state = load_folder(rounded_of)
        for name, t in f32_state.items():
            mine = state[name]
            if mine.dtype != dtype or not torch.equal(mine.view(torch.int16), t.to(dtype).view(torch.int16)):
                raise ValueError(f"{model_dir}: {name} is not {rounded_of}'s {name} rounded to {want_name} by torch")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("generate")
    g.add_argument("out")
    g.add_argument("--seed", type=int, required=True)
    d = sub.add_parser("dump")
    d.add_argument("model_dir")
    d.add_argument("out_file")
    d.add_argument("--bf16-of", default=None)
    d.add_argument("--f16-of", default=None)
    g2 = sub.add_parser("gpt2")
    g2.add_argument("folder")
    g2.add_argument("--seed", type=int, required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "generate":
        generate(args.out, args.seed)
    elif args.command == "gpt2":
        gpt2(args.folder, args.seed)
    else:
        if args.f16_of is not None:
            dump(args.model_dir, args.out_file, args.f16_of, torch.float16)
        else:
            dump(args.model_dir, args.out_file, args.bf16_of, torch.bfloat16)


if __name__ == "__main__":
    try:
        main()
    except (ValueError, KeyError, RuntimeError, AssertionError) as e:
        print(f"llama_reference.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
