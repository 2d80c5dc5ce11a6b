"""PyTorch CPU figures for bench/decode.ts: the same models, shapes and thread count, timed the same way.

Reads one JSON argument:
  {"threads", "models": [{"name", "config": {arch, vocab, context, width, layers, heads, kvHeads, intermediate},
   "decode": {"rows", "prompt", "newTokens"}, "policy": {"batch", "seqLen"} | null}], "rounds"}
and prints one JSON line: per model, seconds of generate with newTokens and with 1 new token (best of
`rounds`), and seconds of one policy step (forward, PPO loss, backward, grad clip, AdamW). Eager mode,
no torch.compile: the same work our native code does, as a PyTorch user would first write it.
"""
import json
import math
import sys
import time

import torch
import torch.nn.functional as F


class Model(torch.nn.Module):
    """GPT-2 style (LayerNorm, learned positions, GELU, biases) or Llama style (RMSNorm, RoPE, SwiGLU, GQA)."""

    def __init__(self, c):
        super().__init__()
        self.llama = c["arch"] == "llama"
        C, V, L = c["width"], c["vocab"], c["layers"]
        self.NH, self.NKV = c["heads"], c.get("kvHeads") or c["heads"]
        self.hd = C // self.NH
        self.kvC = self.NKV * self.hd
        self.I = c.get("intermediate") or (8 * ((C + 2) // 3) if self.llama else 4 * C)
        bias = not self.llama
        self.wte = torch.nn.Embedding(V, C)
        self.wpe = None if self.llama else torch.nn.Embedding(c["context"], C)
        norm = (lambda: torch.nn.RMSNorm(C)) if self.llama and hasattr(torch.nn, "RMSNorm") else (
            (lambda: RMSNorm(C)) if self.llama else (lambda: torch.nn.LayerNorm(C)))
        self.layers = torch.nn.ModuleList()
        for _ in range(L):
            blk = torch.nn.Module()
            blk.ln1, blk.ln2 = norm(), norm()
            blk.qkv = torch.nn.Linear(C, C + 2 * self.kvC, bias=bias)
            blk.proj = torch.nn.Linear(C, C, bias=bias)
            blk.fc = torch.nn.Linear(C, 2 * self.I if self.llama else self.I, bias=bias)
            blk.down = torch.nn.Linear(self.I, C, bias=bias)
            self.layers.append(blk)
        self.lnf = norm()
        self.lm_head = torch.nn.Linear(C, V, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                torch.nn.init.normal_(p, std=0.02)
        if self.llama:
            inv = 1.0 / (c.get("ropeTheta", 10000.0) ** (torch.arange(0, self.hd, 2).float() / self.hd))
            ang = torch.arange(c["context"]).float()[:, None] * inv[None, :]
            self.cos, self.sin = ang.cos(), ang.sin()

    def rope(self, x, pos):  # x [B, H, T, hd], pos [T] positions
        cos, sin = self.cos[pos], self.sin[pos]
        h = self.hd // 2
        x0, x1 = x[..., :h], x[..., h:]
        return torch.cat([x0 * cos - x1 * sin, x1 * cos + x0 * sin], dim=-1)

    def mlp(self, blk, x):
        h = blk.fc(x)
        if self.llama:
            g, u = h.split(self.I, dim=-1)
            return blk.down(F.silu(g) * u)
        return blk.down(F.gelu(h, approximate="tanh"))

    def attend(self, blk, x, p0, cache):
        """x [B, T, C] at positions p0..p0+T-1; cache (k, v) [B, NKV, Tmax, hd] filled there, read up to p0+T-1."""
        B, T, C = x.shape
        pos = torch.arange(p0, p0 + T)
        q, k, v = blk.qkv(x).split([C, self.kvC, self.kvC], dim=-1)
        q = q.view(B, T, self.NH, self.hd).transpose(1, 2)
        k = k.view(B, T, self.NKV, self.hd).transpose(1, 2)
        v = v.view(B, T, self.NKV, self.hd).transpose(1, 2)
        if self.llama:
            q, k = self.rope(q, pos), self.rope(k, pos)
        if cache is not None:
            cache[0][:, :, p0 : p0 + T] = k
            cache[1][:, :, p0 : p0 + T] = v
            k, v = cache[0][:, :, : p0 + T], cache[1][:, :, : p0 + T]
        G = self.NH // self.NKV
        q = q.reshape(B, self.NKV, G * T, self.hd)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)  # [B, NKV, G*T, S]
        if T > 1:  # a decoding step's one query sees the whole cache
            S = k.shape[2]
            causal = pos.view(1, T, 1) >= torch.arange(S).view(1, 1, S)
            att = att.masked_fill(~causal.repeat(G, 1, 1).view(1, 1, G * T, S), float("-inf"))
        att = att.softmax(-1)
        y = (att @ v).view(B, self.NH, T, self.hd).transpose(1, 2).reshape(B, T, C)
        return blk.proj(y)

    def forward(self, tokens, p0, caches=None):
        x = self.wte(tokens)
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(p0, p0 + tokens.shape[1]))
        for i, blk in enumerate(self.layers):
            x = x + self.attend(blk, blk.ln1(x), p0, caches[i] if caches else None)
            x = x + self.mlp(blk, blk.ln2(x))
        return self.lm_head(self.lnf(x))


class RMSNorm(torch.nn.Module):
    def __init__(self, C, eps=1e-5):
        super().__init__()
        self.weight, self.eps = torch.nn.Parameter(torch.ones(C)), eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


@torch.no_grad()
def generate(m, prompts, new_tokens, gen):
    """Batched prefill into a KV cache, then one token per row per step (sampled at temperature 1)."""
    B, P = prompts.shape
    tmax = P + new_tokens
    caches = [(torch.zeros(B, m.NKV, tmax, m.hd), torch.zeros(B, m.NKV, tmax, m.hd)) for _ in m.layers]
    logits = m(prompts, 0, caches)[:, -1]
    out = []
    for t in range(new_tokens):
        logp = logits.log_softmax(-1)
        nxt = torch.multinomial(logp.exp(), 1, generator=gen)
        out.append((nxt, logp.gather(1, nxt)))
        if t + 1 < new_tokens:
            logits = m(nxt, P + t, caches)[:, -1]
    return out


def policy_step(m, opt, tokens, mask, adv, old):
    logits = m(tokens, 0)[:, :-1]
    logp = logits.log_softmax(-1)
    lp = logp.gather(-1, tokens[:, 1:, None])[..., 0]
    ent = -(logp.exp() * logp).sum(-1)
    ratio = (lp - old).exp()
    pg = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2))
    loss = ((pg - 0.0 * ent) * mask).sum() / mask.sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()


def best_of(rounds, fn):
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_model(spec, rounds):
    torch.manual_seed(0)
    m = Model(spec["config"]).eval()
    d = spec["decode"]
    V = spec["config"]["vocab"]
    prompts = torch.randint(0, V, (d["rows"], d["prompt"]))
    gen = torch.Generator().manual_seed(0)
    generate(m, prompts, d["newTokens"], gen)  # warm-up
    out = {
        "name": spec["name"],
        "params": sum(p.numel() for p in m.parameters()),
        "generate_s": best_of(rounds, lambda: generate(m, prompts, d["newTokens"], gen)),
        "prefill_s": best_of(rounds, lambda: generate(m, prompts, 1, gen)),
    }
    p = spec.get("policy")
    if p:
        m.train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.0)
        B, T = p["batch"], p["seqLen"]
        tokens = torch.randint(0, V, (B, T))
        mask = torch.ones(B, T - 1)
        adv = torch.randn(B, T - 1)
        old = torch.full((B, T - 1), -9.0)
        policy_step(m, opt, tokens, mask, adv, old)  # warm-up (allocates the AdamW moments)
        out["policy_step_s"] = best_of(max(2, rounds // 2), lambda: policy_step(m, opt, tokens, mask, adv, old))
    return out


def main():
    args = json.loads(sys.argv[1])
    torch.set_num_threads(args["threads"])
    results = [bench_model(spec, args["rounds"]) for spec in args["models"]]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "models": results}))


if __name__ == "__main__":
    main()
