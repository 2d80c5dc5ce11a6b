// Whole-model tests on the CPU backend, for the GPT-2 architecture and for tiny Llama ones
// (grouped-query attention with q/k/v biases, untied; tied with one kv head): gradient check of the
// PPO policy and value losses through every layer against finite differences, KV-cache generation
// against a full forward pass, sampling reproducibility, and state round trips. Plus the Llama
// tensor layout (Hugging Face names and shapes) and config validation.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"
#include "harness.h"
#include "model_helpers.h"

namespace rvtest {
using namespace revenant;

namespace {

ModelConfig tiny_llama_tied() {
  ModelConfig c = tiny_llama_gqa_bias();
  c.kv_heads = 1;
  c.attention_bias = false;
  c.tied_embeddings = true;
  c.norm_eps = 1e-6f;
  c.seed = 12;
  return c;
}

// Qwen3's shape: q/k norms and a head size of its own, 4 heads of 6 (attention width 24) on a
// width of 16, so o_proj is [16, 24]; no biases.
ModelConfig tiny_qwen3() {
  ModelConfig c = tiny_llama_gqa_bias();
  c.attention_bias = false;
  c.head_dim = 6;
  c.qk_norm = true;
  c.norm_eps = 1e-6f;
  c.seed = 13;
  return c;
}

// Llama 3.2's shape: tied, with its rope scaling; 2 heads of 8 at theta 100 and an original
// context of 32 put the four pairs in all three regimes (kept, blended, divided by the factor).
ModelConfig tiny_llama3() {
  ModelConfig c = tiny_llama_tied();
  c.heads = 2;
  c.kv_heads = 1;
  c.rope_llama3 = true;
  c.rope_scaling = RopeScaling{8.0f, 1.0f, 4.0f, 32.0f};
  c.seed = 14;
  return c;
}

// The configs every whole-model check runs on; GPT-2's checks keep their plain names.
std::vector<std::pair<std::string, ModelConfig>> model_configs() {
  return {{"", tiny_config()},
          {" [llama, GQA 4/2, q/k/v bias]", tiny_llama_gqa_bias()},
          {" [llama, tied, 1 kv head]", tiny_llama_tied()},
          {" [qwen3, q/k norms, head_dim 6 x 4 heads on width 16]", tiny_qwen3()},
          {" [llama3 rope scaling, tied]", tiny_llama3()}};
}

// Sets each scored token's old value and return at fixed offsets from its current value v, cycling
// through the regimes of the clipped value loss with clip 0.2: outside old ± 0.2 with the clipped
// error larger (above and below: the loss is flat in v, zero gradient), outside with the plain error
// larger, and inside. Every token is at least 0.1 from a kink (|v - old| = 0.2, or equal clipped and
// plain errors), far more than a probe step moves v, so the finite differences stay on one branch.
void place_clip_targets(ValueBatch& b, const std::vector<float>& v) {
  struct Offsets {
    float old, ret;
  };
  const Offsets regimes[] = {{-0.5f, 0.1f}, {0.5f, -0.1f}, {-0.5f, -1.0f}, {-0.1f, 0.3f}};
  std::size_t k = 0;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (b.mask[i] == 0) continue;
    const Offsets& o = regimes[k++ % 4];
    b.old_values[i] = v[i] + o.old;
    b.returns[i] = v[i] + o.ret;
  }
}

void whole_model_gradients(const std::string& label, const ModelConfig& cfg) {
  Rng rng(21);
  const float step = cfg.arch == Arch::Llama ? 2.5e-3f : 1e-2f;
  Model m(cfg, make_cpu_backend());
  const PolicyBatch pb = ppo_batch(m, 3, rng);
  PolicyLossConfig lc;
  lc.clip_ratio = 0.2f;
  lc.kl_coef = 0.5f;
  lc.entropy_coef = 0.1f;
  grad_check("whole-model gradient: PPO loss (clip, KL, entropy)" + label, m, m.tensors(),
             [&] { return m.policy_gradients(pb, lc).loss; }, rng, step);

  ValueBatch vb;
  fill_tokens(vb, 3, cfg.context, cfg.vocab, 2, rng);
  vb.returns.resize(vb.tokens.size());
  vb.old_values.assign(vb.tokens.size(), 0.0f);
  for (auto& r : vb.returns) r = static_cast<float>(rng.normal());
  grad_check("whole-model gradient: value loss" + label, m, m.tensors(),
             [&] { return m.value_gradients(vb, 0.0f).vf_loss; }, rng, step);

  ValueBatch clipped = vb;
  place_clip_targets(clipped, m.values(clipped));
  grad_check("whole-model gradient: clipped value loss (clip 0.2)" + label, m, m.tensors(),
             [&] { return m.value_gradients(clipped, 0.2f).vf_loss; }, rng, step);
}

void generation_checks(const std::string& label, ModelConfig cfg) {
  cfg.context = 16;
  Model m(cfg, make_cpu_backend());
  const std::vector<std::vector<int>> prompts = {{1, 2, 3}, {4}, {5, 6}};
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  opt.seed = 99;
  const GenerateResult a = m.generate(prompts, opt);
  const GenerateResult b = m.generate(prompts, opt);
  check(a.tokens == b.tokens && a.logprobs == b.logprobs && a.values == b.values,
        "generate: same seed, bit-identical tokens, logprobs and values" + label, "");
  opt.seed = 100;
  check(m.generate(prompts, opt).tokens != a.tokens, "generate: another seed, other tokens" + label, "");

  // Cached decoding must agree with a full forward pass over the finished sequences.
  double err = 0, verr = 0;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    const TokenBatch tb = rvtest::finished_row(prompts[r], a, r);
    const std::vector<float> lp = m.logprobs(tb), v = m.values(tb);
    for (int i = 0; i < a.lengths[r]; ++i) {
      const int t = static_cast<int>(prompts[r].size()) + i;
      err = std::max(err, double(std::fabs(lp[t] - a.logprobs[r * opt.max_new_tokens + i])));
      verr = std::max(verr, double(std::fabs(v[t] - a.values[r * opt.max_new_tokens + i])));
    }
  }
  // Same ops, different matrix shapes (B rows vs B*T rows): float32 rounding may differ slightly.
  check_close("generate: cached logprobs match logprobs()" + label, err, 1e-5);
  check_close("generate: cached values match values()" + label, verr, 1e-5);

  opt.eos_token = a.tokens[0];
  const GenerateResult e = m.generate(prompts, GenerateOptions{6, 1.0f, 99, a.tokens[0]});
  check(e.lengths[0] == 1, "generate: a row stops at its end-of-sequence token" + label, "");
  bool threw = false;
  try {
    m.generate({{1, 2, 99}}, opt);
  } catch (const Error& ex) {
    threw = std::string(ex.what()).find("99") != std::string::npos;
  }
  check(threw, "generate: out-of-range token id throws an error naming it" + label, "");
}

void state_checks(const std::string& label, const ModelConfig& cfg) {
  Rng rng(8);
  Model a(cfg, make_cpu_backend()), b(cfg, make_cpu_backend());
  check(a.num_params() == count_params(cfg), "parameter layout matches count_params()" + label,
        std::to_string(a.num_params()) + " parameters");
  PolicyBatch pb;
  fill_tokens(pb, 2, cfg.context, cfg.vocab, 2, rng);
  pb.advantages.assign(pb.tokens.size(), 1.0f);
  pb.old_logprobs = a.logprobs(pb);
  OptimConfig oc;
  for (int i = 0; i < 2; ++i) a.policy_step(pb, PolicyLossConfig{}, oc);
  b.set_state(a.get_state());
  const ModelState sa = a.get_state(), sb = b.get_state();
  check(sa.params == sb.params && sa.adam_m == sb.adam_m && sa.adam_v == sb.adam_v && sa.step == sb.step,
        "setState(getState()) round-trips bit-exactly" + label, "");
  for (int i = 0; i < 3; ++i) {
    a.policy_step(pb, PolicyLossConfig{}, oc);
    b.policy_step(pb, PolicyLossConfig{}, oc);
  }
  check(a.get_state().params == b.get_state().params, "restored model trains to the same weights" + label, "");
}

// Hugging Face names and [out, in] shapes, in an order where the q/k/v (and gate/up) tensors are
// contiguous, so the packed products read them as one matrix.
void llama_layout_checks() {
  ModelConfig cfg = tiny_llama_gqa_bias();
  cfg.layers = 1;
  Model m(cfg, make_cpu_backend());
  const int C = 16, KV = 8, I = 12, V = 7;
  const std::vector<std::pair<std::string, std::vector<int>>> want = {
      {"model.embed_tokens.weight", {V, C}},
      {"model.layers.0.input_layernorm.weight", {C}},
      {"model.layers.0.self_attn.q_proj.weight", {C, C}},
      {"model.layers.0.self_attn.k_proj.weight", {KV, C}},
      {"model.layers.0.self_attn.v_proj.weight", {KV, C}},
      {"model.layers.0.self_attn.q_proj.bias", {C}},
      {"model.layers.0.self_attn.k_proj.bias", {KV}},
      {"model.layers.0.self_attn.v_proj.bias", {KV}},
      {"model.layers.0.self_attn.o_proj.weight", {C, C}},
      {"model.layers.0.post_attention_layernorm.weight", {C}},
      {"model.layers.0.mlp.gate_proj.weight", {I, C}},
      {"model.layers.0.mlp.up_proj.weight", {I, C}},
      {"model.layers.0.mlp.down_proj.weight", {C, I}},
      {"model.norm.weight", {C}},
      {"lm_head.weight", {V, C}},
      {"value_head.w", {1, C}},
      {"value_head.b", {1}}};
  bool same = m.tensors().size() == want.size();
  std::size_t next = 0;
  for (std::size_t i = 0; same && i < want.size(); ++i) {
    const TensorSpec& s = m.tensors()[i];
    same = s.name == want[i].first && s.shape == want[i].second && s.offset == next;
    if (!same) std::printf("     tensor %zu: %s at %zu\n", i, s.name.c_str(), s.offset);
    next = s.offset + s.size;
  }
  check(same && next == m.num_params(), "llama tensors: Hugging Face names and shapes, contiguous", "");
  check(m.num_params() == count_params(cfg), "llama parameter layout matches count_params()", std::to_string(m.num_params()));
  cfg.tied_embeddings = true;
  cfg.attention_bias = false;
  Model tied(cfg, make_cpu_backend());
  bool no_head = true;
  for (const TensorSpec& s : tied.tensors()) no_head &= s.name != "lm_head.weight" && s.name.find("bias") == std::string::npos;
  check(no_head && tied.num_params() == count_params(cfg), "llama tied, no bias: no lm_head.weight and no bias tensors", "");
  // Norm scales start at 1, biases at 0.
  const ModelState st = m.get_state();
  bool init_ok = true;
  for (const TensorSpec& s : m.tensors())
    for (std::size_t i = s.offset; i < s.offset + s.size; ++i) {
      if (s.name.find("norm") != std::string::npos) init_ok &= st.params[i] == 1.0f;
      if (s.name.find("bias") != std::string::npos || s.name == "value_head.b") init_ok &= st.params[i] == 0.0f;
    }
  check(init_ok, "llama init: norm weights 1, biases 0", "");

  // Qwen3: q_norm and k_norm of [head_dim] per layer; q_proj [heads * head_dim, width] and o_proj
  // its transpose in shape, whatever width is.
  ModelConfig q = tiny_qwen3();
  q.layers = 1;
  q.value_head = false;
  Model qm(q, make_cpu_backend());
  const auto shape_of = [&](const std::string& name) {
    for (const TensorSpec& s : qm.tensors())
      if (s.name == name) return s.shape;
    return std::vector<int>{};
  };
  check(shape_of("model.layers.0.self_attn.q_proj.weight") == std::vector<int>{24, 16} &&
            shape_of("model.layers.0.self_attn.k_proj.weight") == std::vector<int>{12, 16} &&
            shape_of("model.layers.0.self_attn.o_proj.weight") == std::vector<int>{16, 24} &&
            shape_of("model.layers.0.self_attn.q_norm.weight") == std::vector<int>{6} &&
            shape_of("model.layers.0.self_attn.k_norm.weight") == std::vector<int>{6} &&
            qm.num_params() == count_params(q),
        "qwen3 tensors: q_norm/k_norm [head_dim], q_proj [heads*head_dim, width], o_proj [width, heads*head_dim]",
        std::to_string(qm.num_params()) + " parameters");
}

bool throws_with(const ModelConfig& cfg, const std::string& text) {
  try {
    Model m(cfg, make_cpu_backend());
  } catch (const Error& e) {
    if (std::string(e.what()).find(text) != std::string::npos) return true;
    std::printf("     message: %s\n", e.what());
  }
  return false;
}

void llama_config_checks() {
  ModelConfig c = tiny_llama_gqa_bias();
  c.kv_heads = 3;
  check(throws_with(c, "kvHeads must divide heads (4), got 3"), "llama config: kvHeads not dividing heads is refused", "");
  c = tiny_llama_gqa_bias();
  c.norm_eps = 0;
  check(throws_with(c, "normEps must be a finite number > 0, got 0"), "llama config: normEps 0 is refused", "");
  c = tiny_llama_gqa_bias();
  c.heads = 16;  // head size 16 / 16 = 1
  c.kv_heads = 16;
  check(throws_with(c, "headDim must be even"), "llama config: odd head size is refused", "");
  c = tiny_qwen3();
  c.head_dim = 7;
  check(throws_with(c, "headDim must be even (rotary embeddings rotate pairs) and in 2..512, got 7"),
        "llama config: an odd headDim is refused", "");
  c = tiny_llama3();
  c.rope_scaling.high_freq_factor = c.rope_scaling.low_freq_factor;
  check(throws_with(c, "highFreqFactor > lowFreqFactor"), "llama config: rope scaling with an empty blend band is refused", "");
  c = tiny_config();
  c.qk_norm = true;
  check(throws_with(c, "qkNorm false"), "gpt2 config: q/k norms are refused", "");
  c = tiny_llama_gqa_bias();
  c.width = 18;  // not a multiple of 4 heads, and no head_dim of its own
  check(throws_with(c, "width must be a multiple of heads (unless a llama model gives headDim)"),
        "llama config: width not a multiple of heads without headDim is refused", "");
  c.head_dim = 4;
  check(Model(c, make_cpu_backend()).num_params() == count_params(c), "llama config: with headDim, width need not be a multiple of heads", "");
  c = tiny_llama_gqa_bias();
  c.intermediate = REVENANT_INTERMEDIATE_MAX + 1;
  check(throws_with(c, "intermediate must be in"), "llama config: intermediate above its bound is refused", "");
  c = tiny_config();
  c.kv_heads = 1;
  check(throws_with(c, "only arch \"llama\" takes it"), "gpt2 config: a llama-only setting is refused", "");
  ModelConfig d;
  d.width = 64;
  d.arch = Arch::Llama;
  const ModelConfig r = resolve_config(d);
  check(r.kv_heads == d.heads && r.intermediate == 176 && resolve_config(tiny_config()).intermediate == 32,
        "config defaults: kvHeads = heads; intermediate 8 * ceil(width / 3) for llama, 4 * width for gpt2", "");
  bool threw = false;
  try {
    parse_arch("mamba");
  } catch (const Error& e) {
    threw = std::string(e.what()).find("\"mamba\"") != std::string::npos;
  }
  check(threw, "parse_arch names an unknown architecture", "");
}

}  // namespace

// The constructor fills the weights a 2^20-float chunk at a time; a model of several chunks (its
// tensors straddling the chunk boundaries) must hold exactly what initial_params() computes whole.
void chunked_init_check() {
  ModelConfig c;
  c.arch = Arch::Llama;
  c.vocab = 3000;
  c.width = 256;
  c.heads = 4;
  c.layers = 2;
  c.seed = 17;
  Model m(c, make_cpu_backend());
  check(m.num_params() > 2 * (std::size_t{1} << 20) && m.get_state().params == m.initial_params(),
        "a fresh model holds initial_params() bit for bit (filled in chunks)", std::to_string(m.num_params()) + " weights");
}

// Host buffers: zero-filled at every size; those of 2 MiB or more start on a huge-page boundary
// (cpu_backend.cc maps them on their own) and give their memory back when released.
void cpu_buffer_checks() {
  auto be = make_cpu_backend();
  const std::size_t huge = std::size_t{2} << 20;
  bool zeroed = true, aligned = true;
  for (std::size_t bytes : {std::size_t{1}, std::size_t{4096}, huge - 1, huge, 3 * huge + 5}) {
    unsigned char* p = static_cast<unsigned char*>(be->alloc(bytes));
    for (std::size_t i = 0; i < bytes; ++i) zeroed = zeroed && p[i] == 0;
#if defined(__linux__)  // elsewhere large buffers come from calloc
    if (bytes >= huge) aligned = aligned && reinterpret_cast<std::uintptr_t>(p) % huge == 0;
#endif
    std::memset(p, 0xab, bytes);  // the whole length is writable
    be->release(p);
  }
  check(zeroed, "cpu buffers: zero-filled from 1 byte to 6 MiB", "");
  check(aligned, "cpu buffers: 2 MiB or more start on a 2 MiB boundary", "");
#if defined(__linux__)
  // 64 MiB touched, then released: the resident size falls back (a leaked mapping would keep it).
  auto rss = [] {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (f) {
      if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
      std::fclose(f);
    }
    return static_cast<double>(resident) * 4096 / (1 << 20);
  };
  const double before = rss();
  for (int round = 0; round < 4; ++round) {
    void* p = be->alloc(std::size_t{64} << 20);
    std::memset(p, 1, std::size_t{64} << 20);
    be->release(p);
  }
  const double after = rss();
  check(after - before < 32, "cpu buffers: 4 x 64 MiB touched and released leave the resident size",
        "before " + std::to_string(before) + " MiB, after " + std::to_string(after) + " MiB");
#endif
}

void run_model_tests() {
  std::printf("== model (cpu)\n");
  chunked_init_check();
  cpu_buffer_checks();
  for (const auto& [label, cfg] : model_configs()) {
    whole_model_gradients(label, cfg);
    generation_checks(label, cfg);
    state_checks(label, cfg);
  }
  llama_layout_checks();
  llama_config_checks();
}

}  // namespace rvtest
