"""The PyTorch side of bench/peer.ts: an eager Llama that loads a Hugging Face folder by name.

Run by bench/peer.ts as a child with /usr/bin/python3. It reads one JSON command per line on
stdin and answers one JSON line on stdout; each timed answer carries the seconds the work took
in this process (perf_counter around the work alone, not the pipe):

  {"cmd": "load", "dir": D, "threads": N}          -> {"params": P, "torch": version}
  {"cmd": "generate", "prompts": [[...]], "new": N, "seed": S}   -> {"s": seconds}
  {"cmd": "logprobs", "B": B, "T": T, "tokens": [...], "mask": [...], "values": bool}
                                                   -> {"s": seconds, "logprobs": [...] when values}
  {"cmd": "train", "B", "T", "tokens", "mask", "advantages", "old"}  -> {"s": seconds}
  {"cmd": "quit"}

The model is what a PyTorch user writes from transformers' LlamaForCausalLM: the same parameter
names (model.layers.N.self_attn.q_proj.weight, ...), RMSNorm, rotate_half RoPE, SwiGLU, GQA by
repeating each key/value head, float32, eager (no torch.compile). Generate runs a batched prefill
into a preallocated KV cache, then one token per row per step, sampled at temperature 1. The train
step is the runtime's policy step: PPO clipped loss over the masked tokens (token mean), backward,
global grad-norm clip 1.0, AdamW (lr 1e-3, weight decay 0).
"""
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            raise ValueError(f"{path}: tensor {name} is {e['dtype']}; this benchmark writes F32")
        b, end = e["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[8 + n + b : 8 + n + end]), dtype=torch.float32).reshape(e["shape"])
    return out


class RMSNorm(torch.nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


class Attention(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        C, self.nh, self.nkv = c["hidden_size"], c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = C // self.nh
        self.q_proj = torch.nn.Linear(C, self.nh * self.hd, bias=False)
        self.k_proj = torch.nn.Linear(C, self.nkv * self.hd, bias=False)
        self.v_proj = torch.nn.Linear(C, self.nkv * self.hd, bias=False)
        self.o_proj = torch.nn.Linear(self.nh * self.hd, C, bias=False)

    def forward(self, x, cos, sin, p0, cache):
        """x [B, T, C] at positions p0..p0+T-1; cache (k, v) [B, nkv, Tmax, hd] or None."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.nh, self.hd).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.nkv, self.hd).transpose(1, 2)
        cos, sin = cos[p0 : p0 + T], sin[p0 : p0 + T]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            cache[0][:, :, p0 : p0 + T] = k
            cache[1][:, :, p0 : p0 + T] = v
            k, v = cache[0][:, :, : p0 + T], cache[1][:, :, : p0 + T]
        rep = self.nh // self.nkv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        scores = q @ k.transpose(2, 3) / math.sqrt(self.hd)
        if T > 1:
            S = k.shape[2]
            causal = torch.arange(S)[None, :] > torch.arange(p0, p0 + T)[:, None]
            scores = scores.masked_fill(causal, float("-inf"))
        out = torch.softmax(scores, dim=-1) @ v
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.nh * self.hd))


class MLP(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        C, I = c["hidden_size"], c["intermediate_size"]
        self.gate_proj = torch.nn.Linear(C, I, bias=False)
        self.up_proj = torch.nn.Linear(C, I, bias=False)
        self.down_proj = torch.nn.Linear(I, C, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Layer(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])
        self.mlp = MLP(c)

    def forward(self, h, cos, sin, p0, cache):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, p0, cache)
        return h + self.mlp(self.post_attention_layernorm(h))


class Trunk(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = torch.nn.Embedding(c["vocab_size"], c["hidden_size"])
        self.layers = torch.nn.ModuleList(Layer(c) for _ in range(c["num_hidden_layers"]))
        self.norm = RMSNorm(c["hidden_size"], c["rms_norm_eps"])


class CausalLM(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.model = Trunk(c)
        self.tied = c.get("tie_word_embeddings", False)
        if not self.tied:
            self.lm_head = torch.nn.Linear(c["hidden_size"], c["vocab_size"], bias=False)
        hd = c["hidden_size"] // c["num_attention_heads"]
        inv = 1.0 / (c.get("rope_theta", 10000.0) ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
        ang = torch.outer(torch.arange(c["max_position_embeddings"], dtype=torch.float64), inv)
        emb = torch.cat((ang, ang), dim=-1)
        self.cos, self.sin = emb.cos().float(), emb.sin().float()

    def forward(self, tokens, p0=0, caches=None):
        h = self.model.embed_tokens(tokens)
        for i, layer in enumerate(self.model.layers):
            h = layer(h, self.cos, self.sin, p0, caches[i] if caches else None)
        h = self.model.norm(h)
        head = self.model.embed_tokens.weight if self.tied else self.lm_head.weight
        return h @ head.t()


def load(folder):
    with open(f"{folder}/config.json") as f:
        c = json.load(f)
    m = CausalLM(c)
    m.load_state_dict(read_safetensors(f"{folder}/model.safetensors"), strict=True)
    return m


@torch.no_grad()
def generate(m, prompts, new_tokens, gen):
    B, P = prompts.shape
    a = m.model.layers[0].self_attn
    caches = [(torch.zeros(B, a.nkv, P + new_tokens, a.hd), torch.zeros(B, a.nkv, P + new_tokens, a.hd)) for _ in m.model.layers]
    logits = m(prompts, 0, caches)[:, -1]
    for t in range(new_tokens):
        nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen)
        if t + 1 < new_tokens:
            logits = m(nxt, P + t, caches)[:, -1]


def token_logprobs(m, tokens):
    """[B, T]: entry t is log p(token t | tokens < t); entry 0 is 0 (the runtime's convention)."""
    logp = torch.log_softmax(m(tokens)[:, :-1], dim=-1)
    lp = logp.gather(-1, tokens[:, 1:, None])[..., 0]
    return torch.cat((torch.zeros(tokens.shape[0], 1), lp), dim=1)


def train_step(m, opt, tokens, mask, adv, old):
    lp = token_logprobs(m, tokens)
    w = mask.clone()
    w[:, 0] = 0
    ratio = torch.exp(lp - old)
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    loss = (w * pg).sum() / w.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


def tensors(cmd, *names, dtype=torch.float32):
    B, T = cmd["B"], cmd["T"]
    return [torch.tensor(cmd[n], dtype=dtype).view(B, T) for n in names]


def main():
    m = opt = None
    for line in sys.stdin:
        cmd = json.loads(line)
        kind = cmd["cmd"]
        if kind == "quit":
            return
        out = {}
        if kind == "load":
            torch.set_num_threads(cmd["threads"])
            m = load(cmd["dir"])
            opt = torch.optim.AdamW(m.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
            out = {"params": sum(p.numel() for p in m.parameters()), "torch": torch.__version__, "threads": torch.get_num_threads()}
        elif kind == "generate":
            prompts = torch.tensor(cmd["prompts"], dtype=torch.long)
            gen = torch.Generator().manual_seed(cmd["seed"])
            t0 = time.perf_counter()
            generate(m, prompts, cmd["new"], gen)
            out = {"s": time.perf_counter() - t0}
        elif kind == "logprobs":
            (tokens,) = tensors(cmd, "tokens", dtype=torch.long)
            (mask,) = tensors(cmd, "mask")
            t0 = time.perf_counter()
            with torch.no_grad():
                lp = token_logprobs(m, tokens) * (mask != 0)
            out = {"s": time.perf_counter() - t0}
            if cmd.get("values"):
                out["logprobs"] = lp.reshape(-1).tolist()
        elif kind == "train":
            (tokens,) = tensors(cmd, "tokens", dtype=torch.long)
            mask, adv, old = tensors(cmd, "mask", "advantages", "old")
            t0 = time.perf_counter()
            train_step(m, opt, tokens, mask, adv, old)
            out = {"s": time.perf_counter() - t0}
        else:
            raise ValueError(f"unknown command {kind!r}")
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
