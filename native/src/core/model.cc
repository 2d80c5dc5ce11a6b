// Model: parameter layout, initialisation, forward/backward, sampling loop, PPO steps, state.
//
// Both architectures run the same pre-norm block, written once (block_forward) for the full
// forward pass and for cached decoding:
//   x2 = x + proj(attention(qkv(norm1(x))))      llama: RoPE on q and k, grouped kv heads
//   x3 = x2 + down(act(up(norm2(x2))))            gpt2: GELU of one [4C] product;
//                                                 llama: SwiGLU of a packed gate|up product
// and differ only in the pieces: the norm (LayerNorm / RMSNorm), the MLP activation, RoPE, and
// which tensors exist (gpt2 biases and position table; llama's optional q/k/v biases and q/k
// norms). With q/k norms (Qwen3) each q and k head is RMS-normalised right after the qkv product,
// before RoPE.
#include "core/model.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/kv_cache.h"
#include "core/memory.h"
#include "core/philox.h"

namespace revenant {

// Pointers to one block's parameters (or gradients: same layout, different base); null for a
// tensor the architecture does not have.
struct Model::Layer {
  float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb, *qnorm, *knorm;
};

// Where one block's activations go. forward() points these at per-layer buffers kept for
// backward; generate() points them at shared scratch, with the residual stream updated in place.
// With q/k norms, qkv_raw keeps the product before the norms for backward (null: normalise qkv in
// place, as decoding does) and q_rstd/k_rstd their statistics.
struct Model::BlockIO {
  float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *attproj, *res2, *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_act,
      *fcproj, *res3, *qkv_raw, *q_rstd, *k_rstd;
};

// Activations for one (B, T) shape, plus the gradient scratch the backward pass reuses per layer.
struct Model::Acts {
  int B = 0, T = 0;
  // What the buffers were sized for: B*T token rows and B*T*T attention entries (per head). A
  // smaller shape runs in them as they are (every op indexes by the call's B and T).
  std::size_t cap_bt = 0, cap_btt = 0;
  bool fits(int b, int t) const {
    const std::size_t bt = static_cast<std::size_t>(b) * t;
    return bt <= cap_bt && bt * t <= cap_btt;
  }
  DeviceBuffer<int> tokens, targets;
  DeviceBuffer<float> encoded;
  struct PerLayer {
    DeviceBuffer<float> ln1, ln1_mean, ln1_rstd, qkv, atty, att, attproj, res2, ln2, ln2_mean,
        ln2_rstd, fch, fch_gelu, fcproj, res3, qkv_raw, q_rstd, k_rstd;
    BlockIO io() const {
      return BlockIO{ln1.get(), ln1_mean.get(), ln1_rstd.get(), qkv.get(),  att.get(),      atty.get(),
                     attproj.get(), res2.get(), ln2.get(),      ln2_mean.get(), ln2_rstd.get(), fch.get(),
                     fch_gelu.get(), fcproj.get(), res3.get(), qkv_raw.get(), q_rstd.get(), k_rstd.get()};
    }
  };
  std::vector<PerLayer> layers;
  // head: the fused LM head's scratch (lm_head_scratch rows of one vocabulary chunk), shared by
  // its forward and backward; no [B*T, V] logits tensor is ever held.
  DeviceBuffer<float> lnf, lnf_mean, lnf_rstd, head, lse, values, lp, entropy;
  // The loss's per-row inputs, uploaded once: the weight, then the advantages (a value step: the
  // returns), the old log-probs (old values) and the reference log-probs.
  DeviceBuffer<float> weight, adv, old, ref;
  // gradients
  DeviceBuffer<float> dres, dln, dqkv, datty, dfch, dfch_gelu, dvalues, dlp, dent, dlnf;
};

// generate()'s buffers, kept between calls and grown (never shrunk) when a request needs more:
// scratch for `rows` token rows (a batched prefill's B * P; a decoding step uses the first B),
// logits and samples for `batch` rows, and per-layer KV caches of `cache` floats each (B rows of
// the request's positions). The residual stream x is updated in place; norms, projections and the
// MLP share the rest.
//
// The decoding loop's bookkeeping stays on the backend too (decode_feed, decode_record): `feed`
// holds what one upload brings (the prompt lengths [batch], the prompts padded to the longest
// [batch, span] and the prefill's tokens [rows]), `record` what one download takes back (the drawn
// tokens, their log-probs and values [batch, span] each, the lengths and done flags [batch] and the
// all-done flag); span is the positions a row may reach.
struct Model::Decode {
  std::size_t rows = 0, batch = 0, cache = 0, span = 0;
  // logits and filtered: [batch, Vs] for one position; the logits are divided by the temperature in
  // place, filtered is what top-k/top-p leave of them.
  DeviceBuffer<float> x, ln, mean, rstd, qkv, atty, tmp, fch, fchg, logits, filtered, vals, lp, kcache, vcache, q_rstd,
      k_rstd;
  DeviceBuffer<int> tok, next, feed, record;
  BlockIO io() const {
    return BlockIO{ln.get(), mean.get(), rstd.get(), qkv.get(), nullptr,    atty.get(), tmp.get(), x.get(),
                   ln.get(), mean.get(), rstd.get(), fch.get(), fchg.get(), tmp.get(),  x.get(), nullptr,
                   q_rstd.get(), k_rstd.get()};
  }
};

namespace {

const char* kOp = "model";

template <typename T>
std::string str(const T& v) { return std::to_string(v); }

}  // namespace

Arch parse_arch(const std::string& name) {
  if (name == "gpt2") return Arch::Gpt2;
  if (name == "llama") return Arch::Llama;
  RV_FAIL(kOp, "arch must be \"gpt2\" or \"llama\", got \"" + name + "\"");
}

const char* arch_name(Arch arch) { return arch == Arch::Llama ? "llama" : "gpt2"; }

int default_intermediate(Arch arch, int width) { return arch == Arch::Llama ? 8 * ((width + 2) / 3) : 4 * width; }

ModelConfig resolve_config(ModelConfig c) {
  if (c.kv_heads == 0) c.kv_heads = c.heads;
  if (c.intermediate == 0) c.intermediate = default_intermediate(c.arch, c.width);
  // Left 0 when width / heads is not whole: check_config then refuses the width.
  if (c.head_dim == 0 && c.heads > 0 && c.width % c.heads == 0) c.head_dim = c.width / c.heads;
  if (c.valid_vocab == 0) c.valid_vocab = c.vocab;
  return c;
}

ModelDims model_dims(const ModelConfig& c) {
  const int C = c.width, NH = c.heads, NKV = c.kv_heads, hd = c.head_dim, qC = NH * hd;
  const bool gpt2 = c.arch == Arch::Gpt2;
  const int Vs = c.valid_vocab > 0 ? c.valid_vocab : c.vocab;
  return ModelDims{C, c.vocab, NH, NKV, hd, qC, NKV * hd, qC + 2 * NKV * hd, gpt2 ? 4 * C : 2 * c.intermediate,
                   gpt2 ? 4 * C : c.intermediate, Vs, std::min(Vs, kLmHeadChunk)};
}

ShapeCost activation_cost(const ModelConfig& c, std::size_t B, std::size_t T) {
  return activation_cost(c, B, T, B * static_cast<std::size_t>(model_dims(c).NH) * T * T);
}

// Mirrors acts_for(): every buffer it allocates, counted in 64 bits.
ShapeCost activation_cost(const ModelConfig& c, std::size_t B, std::size_t T, std::size_t att) {
  const ModelDims d = model_dims(c);
  const std::size_t BT = B * T, C = d.C, QKV = d.qkv, MI = d.mlp_in, MH = d.mlp_hidden, QC = d.qC;
  const std::size_t head = lm_head_scratch(BT, d.chunk);
  // q/k norms: the qkv product before them and one statistic per q and k head.
  const std::size_t qk_norm = c.qk_norm ? QKV + d.NH + d.NKV : 0;
  // Per layer: ln1, attproj, res2, ln2, fcproj, res3 (C each), atty (qC), 4 norm statistics, qkv,
  // fch, fch_act, the q/k norms' buffers, and the saved softmax.
  const std::size_t per_layer = BT * (6 * C + QC + 4 + QKV + MI + MH + qk_norm) + att;
  // encoded, lnf, 2 norm statistics, lse, values, lp, entropy, the LM head's scratch, the loss's 4
  // inputs; gradients dres, dln, dlnf (C), datty (qC), dqkv, dfch, dfch_act, dvalues, dlp, dent.
  const std::size_t global = BT * (2 * C + 2 + 4 + 4) + head + BT * (3 * C + QC + QKV + MI + MH + 3);
  ShapeCost cost;
  cost.bytes = (per_layer * static_cast<std::size_t>(c.layers) + global) * sizeof(float) + 2 * BT * sizeof(int);
  cost.largest = std::max({BT * std::max({C, QKV, MI, MH}), head, att});
  return cost;
}

// The ints of Decode::feed and Decode::record.
static std::size_t feed_ints(std::size_t rows, std::size_t batch, std::size_t span) { return batch * (1 + span) + rows; }
static std::size_t record_ints(std::size_t batch, std::size_t span) { return batch * (3 * span + 2) + 1; }

// Mirrors Model::decode_for(): `rows` token rows of scratch, `batch` rows of logits and samples,
// per-layer KV caches of `cache` floats each, and the loop's bookkeeping for rows of `span` positions.
static ShapeCost decode_cost(const ModelConfig& c, std::size_t rows, std::size_t batch, std::size_t cache,
                             std::size_t span) {
  const ModelDims d = model_dims(c);
  const std::size_t C = d.C, V = d.Vs, L = c.layers;
  // x, ln, tmp (C); atty (qC); mean, rstd; qkv; fch; fchg; q/k norm statistics | logits, filtered, vals, lp
  const std::size_t qk_norm = c.qk_norm ? d.NH + d.NKV : 0;
  const std::size_t scratch = rows * (3 * C + d.qC + 2 + d.qkv + d.mlp_in + d.mlp_hidden + qk_norm) + batch * (2 * V + 2);
  ShapeCost cost;
  cost.bytes = (2 * cache * L + scratch) * sizeof(float) +
               (rows + batch + feed_ints(rows, batch, span) + record_ints(batch, span)) * sizeof(int);
  cost.largest = std::max({cache * L, batch * V, rows * std::max<std::size_t>(d.qkv, d.mlp_in)});
  return cost;
}

ShapeCost generate_cost(const ModelConfig& c, std::size_t B, std::size_t prefill, std::size_t positions) {
  return decode_cost(c, B * prefill, B, kv_cache_floats(B, static_cast<int>(positions), model_dims(c).kvC), positions);
}

void check_optim(const char* op, const OptimConfig& o) {
  const auto finite_at_least = [&](const char* name, float v, float lo) {
    RV_CHECK(std::isfinite(v) && v >= lo, op, std::string(name) + " must be a finite number >= " + str(lo) + ", got " + str(v));
  };
  const auto unit = [&](const char* name, float v) {
    RV_CHECK(std::isfinite(v) && v >= 0 && v < 1, op, std::string(name) + " must be in [0, 1), got " + str(v));
  };
  finite_at_least("lr", o.lr, 0);
  unit("beta1", o.beta1);
  unit("beta2", o.beta2);
  RV_CHECK(std::isfinite(o.eps) && o.eps > 0, op,
           "eps must be a finite number > 0 (it keeps the update of a weight with no gradient history from being 0 / 0), got " +
               str(o.eps));
  finite_at_least("weightDecay", o.weight_decay, 0);
  RV_CHECK(std::isfinite(o.max_grad_norm), op, "maxGradNorm must be finite, got " + str(o.max_grad_norm));
}

std::size_t count_params(const ModelConfig& config) {
  const ModelConfig c = resolve_config(config);
  const std::size_t C = c.width, V = c.vocab, T = c.context, L = c.layers;
  std::size_t n = 0;
  if (c.arch == Arch::Gpt2) {
    n = V * C + T * C;
    n += L * (2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C);
    n += 2 * C + V * C;
  } else {
    const std::size_t hd = c.head_dim, qC = hd * c.heads, kvC = hd * c.kv_heads, I = c.intermediate;
    const std::size_t qkv = qC + 2 * kvC;
    n = V * C;
    n += L * (C + qkv * C + (c.attention_bias ? qkv : 0) + qC * C + (c.qk_norm ? 2 * hd : 0) + C + 3 * I * C);
    n += C + (c.tied_embeddings ? 0 : V * C);
  }
  if (c.value_head) n += C + 1;
  return n;
}

Model::Model(const ModelConfig& cfg, std::unique_ptr<Backend> backend)
    : cfg_(resolve_config(cfg)), be_(std::move(backend)) {
  check_config();
  d_ = model_dims(cfg_);
  build_specs();
  if (base16_on()) build_base16();
  else params_ = DeviceBuffer<float>(be_.get(), num_params_);
  // A chunk at a time (4 MB): a model never holds a second full copy of its weights on the host.
  constexpr std::size_t kInitChunk = std::size_t{1} << 20;
  std::vector<float> chunk(std::min(kInitChunk, num_params_));
  for (std::size_t at = 0; at < num_params_; at += kInitChunk) {
    const std::size_t n = std::min(kInitChunk, num_params_ - at);
    std::fill(chunk.begin(), chunk.begin() + n, 0.0f);
    initial_range(at, at + n, chunk.data());
    store_base(at, n, chunk.data());
  }
  // A LoRA model keeps no gradient or moments for its frozen base: only the adapters train.
  DeviceBuffer<float>*g = &grads_, *m = &m_, *v = &v_;
  std::size_t n = num_params_;
  if (lora_on()) {
    build_lora_specs();
    lora_p_ = DeviceBuffer<float>(be_.get(), num_lora_);
    const std::vector<float> adapters = initial_lora_params();
    be_->upload(lora_p_.get(), adapters.data(), num_lora_ * sizeof(float));
    g = &lora_g_, m = &lora_m_, v = &lora_v_;
    n = num_lora_;
  }
  for (DeviceBuffer<float>* b : {g, m, v}) {
    *b = DeviceBuffer<float>(be_.get(), n);
    be_->zero(b->get(), n * sizeof(float));
  }
}

Model::~Model() = default;

// Bounds from native/model_limits.json (compile definitions), the same the config and TS use.
void Model::check_config() const {
  const ModelConfig& c = cfg_;
  check_lora_config();
  const auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  const auto range = [](int lo, int hi) { return " must be in " + str(lo) + ".." + str(hi) + ", got "; };
  RV_CHECK(in(c.vocab, REVENANT_VOCAB_MIN, REVENANT_VOCAB_MAX), kOp, "vocab" + range(REVENANT_VOCAB_MIN, REVENANT_VOCAB_MAX) + str(c.vocab));
  RV_CHECK(c.valid_vocab >= 1 && c.valid_vocab <= c.vocab, kOp,
           "validVocab (the ids that may be sampled and scored) must be in 1..vocab (" + str(c.vocab) + "), got " +
               str(c.valid_vocab));
  RV_CHECK(in(c.context, REVENANT_CONTEXT_MIN, REVENANT_CONTEXT_MAX), kOp, "context" + range(REVENANT_CONTEXT_MIN, REVENANT_CONTEXT_MAX) + str(c.context));
  RV_CHECK(in(c.layers, REVENANT_LAYERS_MIN, REVENANT_LAYERS_MAX), kOp, "layers" + range(REVENANT_LAYERS_MIN, REVENANT_LAYERS_MAX) + str(c.layers));
  RV_CHECK(in(c.heads, REVENANT_HEADS_MIN, REVENANT_HEADS_MAX), kOp, "heads" + range(REVENANT_HEADS_MIN, REVENANT_HEADS_MAX) + str(c.heads));
  // A head size of its own (llama's head_dim) frees width from being a multiple of heads.
  RV_CHECK(in(c.width, REVENANT_WIDTH_MIN, REVENANT_WIDTH_MAX) &&
               (c.width % c.heads == 0 || (c.arch == Arch::Llama && c.head_dim != 0)),
           kOp,
           "width must be a multiple of heads (unless a llama model gives headDim) in " + str(REVENANT_WIDTH_MIN) + ".." +
               str(REVENANT_WIDTH_MAX) + ", got width " + str(c.width) + ", heads " + str(c.heads));
  RV_CHECK(in(c.kv_heads, REVENANT_KVHEADS_MIN, std::min(REVENANT_KVHEADS_MAX, c.heads)) && c.heads % c.kv_heads == 0, kOp,
           "kvHeads must divide heads (" + str(c.heads) + "), got " + str(c.kv_heads));
  RV_CHECK(in(c.intermediate, REVENANT_INTERMEDIATE_MIN, REVENANT_INTERMEDIATE_MAX), kOp,
           "intermediate" + range(REVENANT_INTERMEDIATE_MIN, REVENANT_INTERMEDIATE_MAX) + str(c.intermediate));
  if (c.arch == Arch::Gpt2) {
    // GPT-2 has exactly one shape per size; a llama-only setting here is a mistake, not a no-op.
    const auto only_llama = [](const std::string& what) { return what + " (only arch \"llama\" takes it)"; };
    RV_CHECK(c.kv_heads == c.heads, kOp, only_llama("kvHeads must equal heads for arch \"gpt2\", got " + str(c.kv_heads)));
    RV_CHECK(c.intermediate == 4 * c.width, kOp,
             only_llama("intermediate must be 4 * width (" + str(4 * c.width) + ") for arch \"gpt2\", got " + str(c.intermediate)));
    RV_CHECK(!c.tied_embeddings && !c.attention_bias, kOp, only_llama("tiedEmbeddings and attentionBias must be false for arch \"gpt2\""));
    RV_CHECK(c.norm_eps == 1e-5f && c.rope_theta == 10000.0f, kOp,
             only_llama("normEps must be 1e-5 and ropeTheta 10000 for arch \"gpt2\", got " + str(c.norm_eps) + " and " + str(c.rope_theta)));
    RV_CHECK(c.head_dim == c.width / c.heads && !c.qk_norm && !c.rope_llama3, kOp,
             only_llama("headDim must be width / heads (" + str(c.width / c.heads) + "), qkNorm false and ropeScaling null for arch \"gpt2\""));
    return;
  }
  RV_CHECK(in(c.head_dim, REVENANT_HEADDIM_MIN, REVENANT_HEADDIM_MAX) && c.head_dim % 2 == 0, kOp,
           "headDim must be even (rotary embeddings rotate pairs) and in " + str(REVENANT_HEADDIM_MIN) + ".." +
               str(REVENANT_HEADDIM_MAX) + ", got " + str(c.head_dim));
  if (c.rope_llama3) {
    const RopeScaling& r = c.rope_scaling;
    const auto pos = [](float v) { return std::isfinite(v) && v > 0; };
    RV_CHECK(pos(r.factor) && pos(r.low_freq_factor) && pos(r.original_context) && std::isfinite(r.high_freq_factor) &&
                 r.high_freq_factor > r.low_freq_factor,
             kOp,
             "ropeScaling must have finite factor, lowFreqFactor and originalContext > 0 and highFreqFactor > lowFreqFactor, got factor " +
                 str(r.factor) + ", lowFreqFactor " + str(r.low_freq_factor) + ", highFreqFactor " + str(r.high_freq_factor) +
                 ", originalContext " + str(r.original_context));
  }
  RV_CHECK(std::isfinite(c.norm_eps) && c.norm_eps > 0, kOp, "normEps must be a finite number > 0, got " + str(c.norm_eps));
  RV_CHECK(std::isfinite(c.rope_theta) && c.rope_theta > 0, kOp, "ropeTheta must be a finite number > 0, got " + str(c.rope_theta));
}

Model::Layer Model::layer(float* base, int l) const {
  const LayerSlots& s = layer_slots_[l];
  return Layer{at(base, s.ln1w),     at(base, s.ln1b),     at(base, s.qkvw), at(base, s.qkvb),
               at(base, s.attprojw), at(base, s.attprojb), at(base, s.ln2w), at(base, s.ln2b),
               at(base, s.fcw),      at(base, s.fcb),      at(base, s.fcprojw), at(base, s.fcprojb),
               at(base, s.qnorm),    at(base, s.knorm)};
}

std::size_t Model::add_spec(const std::string& name, std::vector<int> shape, TensorSpec::Group group,
                            TensorSpec::Init init) {
  TensorSpec s;
  s.name = name;
  s.shape = std::move(shape);
  s.size = 1;
  for (int d : s.shape) s.size *= static_cast<std::size_t>(d);
  s.offset = num_params_;
  s.group = group;
  s.decay = s.shape.size() == 2;
  s.init = init;
  num_params_ += s.size;
  specs_.push_back(s);
  return s.offset;
}

void Model::build_specs() {
  layer_slots_.assign(cfg_.layers, LayerSlots{});
  if (cfg_.arch == Arch::Llama) build_llama_specs();
  else build_gpt2_specs();
  // The critic head sits on the final norm's output in both architectures.
  if (cfg_.value_head) {
    slots_.vhw = add_spec("value_head.w", {1, d_.C}, TensorSpec::ValueHead, TensorSpec::Normal);
    slots_.vhb = add_spec("value_head.b", {1}, TensorSpec::ValueHead, TensorSpec::Zeros);
  }
}

void Model::build_gpt2_specs() {
  using G = TensorSpec;
  const int C = cfg_.width, V = cfg_.vocab;
  slots_.wte = add_spec("wte", {V, C}, G::Trunk, G::Normal);
  slots_.wpe = add_spec("wpe", {cfg_.context, C}, G::Trunk, G::Normal);
  for (int l = 0; l < cfg_.layers; ++l) {
    const std::string p = "h" + std::to_string(l) + ".";
    LayerSlots& s = layer_slots_[l];
    s.ln1w = add_spec(p + "ln1.w", {C}, G::Trunk, G::Ones);
    s.ln1b = add_spec(p + "ln1.b", {C}, G::Trunk, G::Zeros);
    s.qkvw = add_spec(p + "attn.qkv.w", {3 * C, C}, G::Trunk, G::Normal);
    s.qkvb = add_spec(p + "attn.qkv.b", {3 * C}, G::Trunk, G::Zeros);
    s.attprojw = add_spec(p + "attn.proj.w", {C, C}, G::Trunk, G::NormalResidual);
    s.attprojb = add_spec(p + "attn.proj.b", {C}, G::Trunk, G::Zeros);
    s.ln2w = add_spec(p + "ln2.w", {C}, G::Trunk, G::Ones);
    s.ln2b = add_spec(p + "ln2.b", {C}, G::Trunk, G::Zeros);
    s.fcw = add_spec(p + "mlp.fc.w", {4 * C, C}, G::Trunk, G::Normal);
    s.fcb = add_spec(p + "mlp.fc.b", {4 * C}, G::Trunk, G::Zeros);
    s.fcprojw = add_spec(p + "mlp.proj.w", {C, 4 * C}, G::Trunk, G::NormalResidual);
    s.fcprojb = add_spec(p + "mlp.proj.b", {C}, G::Trunk, G::Zeros);
  }
  slots_.lnfw = add_spec("lnf.w", {C}, G::Trunk, G::Ones);
  slots_.lnfb = add_spec("lnf.b", {C}, G::Trunk, G::Zeros);
  slots_.lm_head = add_spec("lm_head.w", {V, C}, G::LmHead, G::Normal);
}

// Hugging Face's names and [out, in] shapes, so a checkpoint loads by name. q/k/v (weights, and
// biases) and gate/up are laid out back to back so one product with the packed
// [(NH + 2 NKV) hd, C] or [2I, C] matrix computes them all.
void Model::build_llama_specs() {
  using G = TensorSpec;
  const int C = d_.C, V = d_.V, qC = d_.qC, kvC = d_.kvC, I = cfg_.intermediate;
  slots_.wte = add_spec("model.embed_tokens.weight", {V, C}, G::Trunk, G::Normal);
  for (int l = 0; l < cfg_.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    LayerSlots& s = layer_slots_[l];
    s.ln1w = add_spec(p + "input_layernorm.weight", {C}, G::Trunk, G::Ones);
    s.qkvw = add_spec(p + "self_attn.q_proj.weight", {qC, C}, G::Trunk, G::Normal);
    add_spec(p + "self_attn.k_proj.weight", {kvC, C}, G::Trunk, G::Normal);
    add_spec(p + "self_attn.v_proj.weight", {kvC, C}, G::Trunk, G::Normal);
    if (cfg_.attention_bias) {
      s.qkvb = add_spec(p + "self_attn.q_proj.bias", {qC}, G::Trunk, G::Zeros);
      add_spec(p + "self_attn.k_proj.bias", {kvC}, G::Trunk, G::Zeros);
      add_spec(p + "self_attn.v_proj.bias", {kvC}, G::Trunk, G::Zeros);
    }
    s.attprojw = add_spec(p + "self_attn.o_proj.weight", {C, qC}, G::Trunk, G::NormalResidual);
    if (cfg_.qk_norm) {
      s.qnorm = add_spec(p + "self_attn.q_norm.weight", {d_.hd}, G::Trunk, G::Ones);
      s.knorm = add_spec(p + "self_attn.k_norm.weight", {d_.hd}, G::Trunk, G::Ones);
    }
    s.ln2w = add_spec(p + "post_attention_layernorm.weight", {C}, G::Trunk, G::Ones);
    s.fcw = add_spec(p + "mlp.gate_proj.weight", {I, C}, G::Trunk, G::Normal);
    add_spec(p + "mlp.up_proj.weight", {I, C}, G::Trunk, G::Normal);
    s.fcprojw = add_spec(p + "mlp.down_proj.weight", {C, I}, G::Trunk, G::NormalResidual);
  }
  slots_.lnfw = add_spec("model.norm.weight", {C}, G::Trunk, G::Ones);
  // Tied: the LM head reads (and its gradient adds into) the token embedding.
  slots_.lm_head = cfg_.tied_embeddings ? slots_.wte : add_spec("lm_head.weight", {V, C}, G::LmHead, G::Normal);
}

// GPT-2 initialisation for both architectures: N(0, 0.02), residual projections scaled by
// 1/sqrt(2L) (so the residual stream's variance does not grow with depth), norms at 1, biases at
// 0. Normals come from Philox(seed, index) so the weights are the same on any backend.
std::vector<float> Model::initial_params() const {
  std::vector<float> host(num_params_, 0.0f);
  initial_range(0, num_params_, host.data());
  return host;
}

// Entries [begin, end) of initial_params() into out (end - begin floats, zeroed by the caller), so
// the constructor can fill the weights a chunk at a time instead of holding a second full copy.
void Model::initial_range(std::size_t begin, std::size_t end, float* out) const {
  const double resid_scale = 1.0 / std::sqrt(2.0 * cfg_.layers);
  for (const TensorSpec& s : specs_) {
    const std::size_t lo = std::max(begin, s.offset), hi = std::min(end, s.offset + s.size);
    if (lo >= hi) continue;
    if (s.init == TensorSpec::Ones) std::fill(out + (lo - begin), out + (hi - begin), 1.0f);
    if (s.init != TensorSpec::Normal && s.init != TensorSpec::NormalResidual) continue;
    double std = 0.02;
    if (s.init == TensorSpec::NormalResidual) std *= resid_scale;
    for (std::size_t idx = lo; idx < hi; ++idx) {
      const Philox4 r = philox4x32(cfg_.seed, static_cast<uint32_t>(idx), static_cast<uint32_t>(idx >> 32), 0x1A17u, 0);
      const double u1 = (static_cast<double>(r.v[0]) + 1.0) / 4294967296.0;  // (0, 1]
      const double u2 = static_cast<double>(r.v[1]) / 4294967296.0;
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      out[idx - begin] = static_cast<float>(z * std);
    }
  }
}

// The activation buffers for a B x T batch. Buffers held for a larger shape are reused: the
// actor's log-probs over the whole batch and its updates over mini-batches alternate shapes every
// step, and reallocating (and faulting in fresh pages) each time cost as much as the compute.
Model::Acts& Model::acts_for(int B, int T) {
  if (acts_ && acts_->fits(B, T)) {
    acts_->B = B;
    acts_->T = T;
    return *acts_;
  }
  acts_.reset();  // free the old shape before allocating the new one
  acts_bytes_ = 0;
  auto a = std::make_unique<Acts>();
  Backend* be = be_.get();
  const std::size_t BT = static_cast<std::size_t>(B) * T, C = d_.C;
  const std::size_t QKV = d_.qkv, MI = d_.mlp_in, MH = d_.mlp_hidden, uB = B, uT = T;
  // What the backend's attention saves per layer: the T x T softmax, or flash attention's 2 floats
  // per query.
  const std::size_t att_floats = be->attention_scratch_floats(B, T, d_.qC, d_.NH);
  a->B = B;
  a->T = T;
  a->cap_bt = BT;
  a->cap_btt = BT * uT;
  a->tokens = DeviceBuffer<int>(be, BT);
  a->targets = DeviceBuffer<int>(be, BT);
  a->encoded = DeviceBuffer<float>(be, BT * C);
  a->layers.resize(cfg_.layers);
  for (auto& l : a->layers) {
    l.ln1 = DeviceBuffer<float>(be, BT * C);
    l.ln1_mean = DeviceBuffer<float>(be, BT);
    l.ln1_rstd = DeviceBuffer<float>(be, BT);
    l.qkv = DeviceBuffer<float>(be, BT * QKV);
    l.atty = DeviceBuffer<float>(be, BT * d_.qC);
    l.att = DeviceBuffer<float>(be, att_floats);
    if (cfg_.qk_norm) {
      l.qkv_raw = DeviceBuffer<float>(be, BT * QKV);
      l.q_rstd = DeviceBuffer<float>(be, BT * d_.NH);
      l.k_rstd = DeviceBuffer<float>(be, BT * d_.NKV);
    }
    l.attproj = DeviceBuffer<float>(be, BT * C);
    l.res2 = DeviceBuffer<float>(be, BT * C);
    l.ln2 = DeviceBuffer<float>(be, BT * C);
    l.ln2_mean = DeviceBuffer<float>(be, BT);
    l.ln2_rstd = DeviceBuffer<float>(be, BT);
    l.fch = DeviceBuffer<float>(be, BT * MI);
    l.fch_gelu = DeviceBuffer<float>(be, BT * MH);
    l.fcproj = DeviceBuffer<float>(be, BT * C);
    l.res3 = DeviceBuffer<float>(be, BT * C);
  }
  a->lnf = DeviceBuffer<float>(be, BT * C);
  a->lnf_mean = DeviceBuffer<float>(be, BT);
  a->lnf_rstd = DeviceBuffer<float>(be, BT);
  a->head = DeviceBuffer<float>(be, lm_head_scratch(BT, d_.chunk));
  a->lse = DeviceBuffer<float>(be, BT);
  a->values = DeviceBuffer<float>(be, BT);
  a->lp = DeviceBuffer<float>(be, BT);
  a->entropy = DeviceBuffer<float>(be, BT);
  for (DeviceBuffer<float>* b : {&a->weight, &a->adv, &a->old, &a->ref}) *b = DeviceBuffer<float>(be, BT);
  a->dres = DeviceBuffer<float>(be, BT * C);
  a->dln = DeviceBuffer<float>(be, BT * C);
  a->dqkv = DeviceBuffer<float>(be, BT * QKV);
  a->datty = DeviceBuffer<float>(be, BT * d_.qC);
  a->dfch = DeviceBuffer<float>(be, BT * MI);
  a->dfch_gelu = DeviceBuffer<float>(be, BT * MH);
  a->dvalues = DeviceBuffer<float>(be, BT);
  a->dlp = DeviceBuffer<float>(be, BT);
  a->dent = DeviceBuffer<float>(be, BT);
  a->dlnf = DeviceBuffer<float>(be, BT * C);
  acts_ = std::move(a);
  acts_bytes_ = activation_cost(cfg_, uB, uT, att_floats).bytes;
  return *acts_;
}

// ---- the architecture-dependent pieces ----

void Model::norm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w, const float* b, int N) {
  if (cfg_.arch == Arch::Llama) be_->rmsnorm_forward(out, rstd, inp, w, N, d_.C, cfg_.norm_eps);
  else be_->layernorm_forward(out, mean, rstd, inp, w, b, N, d_.C);
}

void Model::norm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp, const float* w,
                          const float* mean, const float* rstd, int N) {
  if (cfg_.arch == Arch::Llama) be_->rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, d_.C);
  else be_->layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, d_.C);
}

// N rows of mlp_in -> N rows of mlp_hidden.
void Model::mlp_act_forward(float* out, const float* inp, int N) {
  if (cfg_.arch == Arch::Llama) be_->swiglu_forward(out, inp, N, cfg_.intermediate);
  else be_->gelu_forward(out, inp, N * d_.mlp_in);
}

void Model::mlp_act_backward(float* dinp, const float* inp, const float* dout, int N) {
  if (cfg_.arch == Arch::Llama) be_->swiglu_backward(dinp, inp, dout, N, cfg_.intermediate);
  else be_->gelu_backward(dinp, inp, dout, N * d_.mlp_in);
}

// RoPE on the q and k heads, which sit side by side at the start of each qkv row; Llama 3's
// frequency scaling when the config has it. The backward rotates the gradient back in place.
void Model::rope(float* qkv, int B, int T, int pos0, bool backward) {
  const int heads = d_.NH + d_.NKV;
  if (cfg_.rope_llama3) {
    if (backward) be_->rope_llama3_backward(qkv, B, T, heads, d_.hd, d_.qkv, pos0, cfg_.rope_theta, cfg_.rope_scaling);
    else be_->rope_llama3_forward(qkv, B, T, heads, d_.hd, d_.qkv, pos0, cfg_.rope_theta, cfg_.rope_scaling);
  } else if (backward) {
    be_->rope_backward(qkv, B, T, heads, d_.hd, d_.qkv, pos0, cfg_.rope_theta);
  } else {
    be_->rope_forward(qkv, B, T, heads, d_.hd, d_.qkv, pos0, cfg_.rope_theta);
  }
}

// ---- forward and backward ----

// One block on B rows of T positions starting at position pos0. With kcache/vcache (rows of
// cache_len positions) the attention stores the T positions in the caches and attends over
// everything cached up to each (a prefill, or one decoding step when T == 1); otherwise it is the
// full causal pass over the T positions.
void Model::block_forward(const Layer& w, int l, const BlockIO& x, const float* residual, int B, int T, int pos0,
                          float* kcache, float* vcache, int cache_len) {
  Backend& be = *be_;
  const Dims& d = d_;
  const int N = B * T;
  norm_forward(x.ln1, x.ln1_mean, x.ln1_rstd, residual, w.ln1w, w.ln1b, N);
  // With q/k norms and a backward to come, the product lands in qkv_raw and is kept there.
  float* raw = cfg_.qk_norm && x.qkv_raw ? x.qkv_raw : x.qkv;
  be.matmul_forward(raw, x.ln1, frozen(w.qkvw, l, kQkvW), w.qkvb, N, d.C, d.qkv);
  lora_add(l, LoraQ, LoraV, raw, x.ln1, N);
  if (cfg_.qk_norm) {
    if (raw != x.qkv) be.copy(x.qkv, raw, static_cast<std::size_t>(N) * d.qkv * sizeof(float));  // v as it is
    be.head_rmsnorm_forward(x.qkv, x.q_rstd, raw, w.qnorm, N, d.NH, d.hd, d.qkv, cfg_.norm_eps);
    be.head_rmsnorm_forward(x.qkv + d.qC, x.k_rstd, raw + d.qC, w.knorm, N, d.NKV, d.hd, d.qkv, cfg_.norm_eps);
  }
  if (cfg_.arch == Arch::Llama) rope(x.qkv, B, T, pos0, false);
  if (kcache) be.attention_decode(x.atty, kcache, vcache, x.qkv, B, T, d.qC, d.NH, d.NKV, pos0, cache_len);
  else be.attention_forward(x.atty, x.att, x.qkv, B, T, d.qC, d.NH, d.NKV);
  be.matmul_forward(x.attproj, x.atty, frozen(w.attprojw, l, kAttProjW), w.attprojb, N, d.qC, d.C);
  lora_add(l, LoraO, LoraO, x.attproj, x.atty, N);
  be.residual_forward(x.res2, residual, x.attproj, N * d.C);
  norm_forward(x.ln2, x.ln2_mean, x.ln2_rstd, x.res2, w.ln2w, w.ln2b, N);
  be.matmul_forward(x.fch, x.ln2, frozen(w.fcw, l, kFcW), w.fcb, N, d.C, d.mlp_in);
  lora_add(l, LoraGate, LoraUp, x.fch, x.ln2, N);
  mlp_act_forward(x.fch_act, x.fch, N);
  be.matmul_forward(x.fcproj, x.fch_act, frozen(w.fcprojw, l, kFcProjW), w.fcprojb, N, d.mlp_hidden, d.C);
  lora_add(l, LoraDown, LoraDown, x.fcproj, x.fch_act, N);
  be.residual_forward(x.res3, x.res2, x.fcproj, N * d.C);
}

// Final norm, then the LM head's logits over the Vs ids that may be sampled (generate's few rows)
// and/or the value head (values), either may be null. A bfloat16 head computes the logits one
// vocabulary chunk at a time, each chunk widened into widened_ and its product written to scratch
// (N * chunk floats) and moved into its columns: the same products as one over the whole head.
void Model::head_forward(float* lnf, float* lnf_mean, float* lnf_rstd, const float* residual, float* logits,
                         float* scratch, float* values, int N) {
  float* P = params_.get();
  const int C = d_.C, V = d_.Vs;
  norm_forward(lnf, lnf_mean, lnf_rstd, residual, at(P, slots_.lnfw), at(P, slots_.lnfb), N);
  if (logits && !head16()) be_->matmul_forward(logits, lnf, at(P, slots_.lm_head), nullptr, N, C, V);
  else if (logits)
    for (int v0 = 0; v0 < V; v0 += d_.chunk) {
      const int vc = std::min(d_.chunk, V - v0);
      be_->bf16_widen(widened_.get(), head16() + static_cast<std::size_t>(v0) * C, static_cast<std::size_t>(vc) * C);
      float* out = vc == V ? logits : scratch;
      be_->matmul_forward(out, lnf, widened_.get(), nullptr, N, C, vc);
      if (out != logits) be_->copy_columns(logits + v0, V, scratch, N, vc);
    }
  if (values) {
    RV_CHECK(cfg_.value_head, kOp, "this model has no value head (create it with valueHead: true)");
    be_->matmul_forward(values, lnf, at(P, slots_.vhw), at(P, slots_.vhb), N, d_.C, 1);
  }
}

// The trunk and the final norm (a.lnf), and the values when asked; the LM head runs fused with its
// log-softmax in head_logprobs.
void Model::forward(Acts& a, bool want_values) {
  const int B = a.B, T = a.T;
  float* P = params_.get();
  embed(a.encoded.get(), a.tokens.get(), B, T, 0);
  const float* residual = a.encoded.get();
  for (int l = 0; l < cfg_.layers; ++l) {
    block_forward(layer(P, l), l, a.layers[l].io(), residual, B, T, 0, nullptr, nullptr, 0);
    residual = a.layers[l].res3.get();
  }
  head_forward(a.lnf.get(), a.lnf_mean.get(), a.lnf_rstd.get(), residual, nullptr, nullptr, want_values ? a.values.get() : nullptr,
               B * T);
}

// a.lp (and a.entropy) of a.targets under softmax(lm_head(lnf) / temperature) over the Vs ids,
// vocabulary chunk by chunk; a.lse kept for the backward.
void Model::head_logprobs(Acts& a, float temperature, bool want_entropy) {
  be_->lm_head_forward(a.lp.get(), want_entropy ? a.entropy.get() : nullptr, a.lse.get(), a.head.get(), a.lnf.get(),
                       at(params_.get(), slots_.lm_head), head16(), widened_.get(), a.targets.get(), a.B * a.T, d_.C,
                       d_.Vs, d_.chunk, 1.0f / temperature);
}

// Block l's backward: a.dres holds the gradient of its output (res3) and leaves holding that of
// its input. A residual add passes its gradient through unchanged, so each branch accumulates
// into dres in place, which is residual_backward without the copies.
void Model::block_backward(Acts& a, const Layer& w, const Layer& g, int l, const float* residual) {
  Backend& be = *be_;
  const Dims& d = d_;
  const int B = a.B, T = a.T, N = B * T;
  const std::size_t rows = static_cast<std::size_t>(N) * sizeof(float);
  Acts::PerLayer& x = a.layers[l];
  // MLP branch: res3 = res2 + down(act(up(norm2(res2))))
  be.zero(a.dfch_gelu.get(), rows * d.mlp_hidden);
  be.matmul_backward(a.dfch_gelu.get(), g.fcprojw, g.fcprojb, a.dres.get(), x.fch_gelu.get(), frozen(w.fcprojw, l, kFcProjW), N, d.mlp_hidden, d.C);
  lora_grad(l, LoraDown, LoraDown, a.dfch_gelu.get(), a.dres.get(), x.fch_gelu.get(), N);
  be.zero(a.dfch.get(), rows * d.mlp_in);
  mlp_act_backward(a.dfch.get(), x.fch.get(), a.dfch_gelu.get(), N);
  be.zero(a.dln.get(), rows * d.C);
  be.matmul_backward(a.dln.get(), g.fcw, g.fcb, a.dfch.get(), x.ln2.get(), frozen(w.fcw, l, kFcW), N, d.C, d.mlp_in);
  lora_grad(l, LoraGate, LoraUp, a.dln.get(), a.dfch.get(), x.ln2.get(), N);
  norm_backward(a.dres.get(), g.ln2w, g.ln2b, a.dln.get(), x.res2.get(), w.ln2w, x.ln2_mean.get(), x.ln2_rstd.get(), N);
  // Attention branch: res2 = residual + proj(attention(qkv(norm1(residual))))
  be.zero(a.datty.get(), rows * d.qC);
  be.matmul_backward(a.datty.get(), g.attprojw, g.attprojb, a.dres.get(), x.atty.get(), frozen(w.attprojw, l, kAttProjW), N, d.qC, d.C);
  lora_grad(l, LoraO, LoraO, a.datty.get(), a.dres.get(), x.atty.get(), N);
  be.zero(a.dqkv.get(), rows * d.qkv);
  be.attention_backward(a.dqkv.get(), a.datty.get(), x.qkv.get(), x.att.get(), B, T, d.qC, d.NH, d.NKV);
  // Gradient of the rotated q, k -> of the normalised ones -> of the projections' output, in place.
  if (cfg_.arch == Arch::Llama) rope(a.dqkv.get(), B, T, 0, true);
  if (cfg_.qk_norm) {
    const float* raw = x.qkv_raw.get();
    be.head_rmsnorm_backward(a.dqkv.get(), g.qnorm, raw, w.qnorm, x.q_rstd.get(), N, d.NH, d.hd, d.qkv);
    be.head_rmsnorm_backward(a.dqkv.get() + d.qC, g.knorm, raw + d.qC, w.knorm, x.k_rstd.get(), N, d.NKV, d.hd, d.qkv);
  }
  be.zero(a.dln.get(), rows * d.C);
  be.matmul_backward(a.dln.get(), g.qkvw, g.qkvb, a.dqkv.get(), x.ln1.get(), frozen(w.qkvw, l, kQkvW), N, d.C, d.qkv);
  lora_grad(l, LoraQ, LoraV, a.dln.get(), a.dqkv.get(), x.ln1.get(), N);
  norm_backward(a.dres.get(), g.ln1w, g.ln1b, a.dln.get(), residual, w.ln1w, x.ln1_mean.get(), x.ln1_rstd.get(), N);
}

// Backward from dlp, dent (the LM head, recomputed chunk by chunk at `temperature`) and/or dvalues
// (already in a).
void Model::backward(Acts& a, float temperature, bool with_logits, bool with_values) {
  Backend& be = *be_;
  const int B = a.B, T = a.T, C = d_.C, BT = B * T;
  const std::size_t bytes = static_cast<std::size_t>(BT) * C * sizeof(float);
  float* P = params_.get();
  float* G = lora_on() ? nullptr : grads_.get();  // a LoRA model's base is frozen: no gradient
  be.zero(a.dlnf.get(), bytes);
  be.zero(a.dres.get(), bytes);
  if (with_logits)
    be.lm_head_backward(a.dlnf.get(), at(G, slots_.lm_head), a.head.get(), a.lnf.get(), at(P, slots_.lm_head), head16(),
                        widened_.get(), a.targets.get(), a.lse.get(), a.entropy.get(), a.dlp.get(), a.dent.get(), BT, C,
                        d_.Vs, d_.chunk, 1.0f / temperature);
  if (with_values)
    be.matmul_backward(a.dlnf.get(), at(G, slots_.vhw), at(G, slots_.vhb), a.dvalues.get(), a.lnf.get(), at(P, slots_.vhw),
                       BT, C, 1);
  const float* last = cfg_.layers > 0 ? a.layers.back().res3.get() : a.encoded.get();
  norm_backward(a.dres.get(), at(G, slots_.lnfw), at(G, slots_.lnfb), a.dlnf.get(), last, at(P, slots_.lnfw),
                a.lnf_mean.get(), a.lnf_rstd.get(), BT);
  for (int l = cfg_.layers - 1; l >= 0; --l) {
    const float* residual = l == 0 ? a.encoded.get() : a.layers[l - 1].res3.get();
    block_backward(a, layer(P, l), layer(G, l), l, residual);
  }
  if (G) be.embedding_backward(at(G, slots_.wte), at(G, slots_.wpe), a.dres.get(), a.tokens.get(), B, T, C, 0);
}

void Model::validate(const TokenBatch& batch, const char* op) const {
  RV_CHECK(batch.B >= 1 && batch.T >= 2 && batch.T <= cfg_.context, op,
           "batch shape [" + str(batch.B) + ", " + str(batch.T) + "] must have B >= 1 and 2 <= T <= context (" +
               str(cfg_.context) + ")");
  // Before the arrays are looked at: a shape that cannot fit is refused on its numbers alone.
  const bool allocated = acts_ && acts_->fits(batch.B, batch.T);
  if (!allocated)
    check_fits(op, "batch [B=" + str(batch.B) + ", T=" + str(batch.T) + "]",
               activation_cost(cfg_, batch.B, batch.T, be_->attention_scratch_floats(batch.B, batch.T, d_.qC, d_.NH)),
               acts_bytes_);
  const std::size_t n = static_cast<std::size_t>(batch.B) * batch.T;
  RV_CHECK(batch.tokens.size() == n && batch.mask.size() == n, op, "tokens and mask must hold B*T values");
  for (std::size_t i = 0; i < n; ++i)
    RV_CHECK(batch.tokens[i] >= 0 && batch.tokens[i] < d_.Vs, op,
             "token id " + str(batch.tokens[i]) + " at index " + str(i) + " is outside 0.." + str(d_.Vs - 1) +
                 (d_.Vs < d_.V ? " (the ids this model may sample and score: validVocab " + str(d_.Vs) + " of its " +
                                     str(d_.V) + " embedding rows)"
                               : ""));
  RV_CHECK(std::isfinite(batch.temperature) && batch.temperature > 0, op,
           "temperature must be a finite number > 0 (log-probs are of softmax(logits / temperature)), got " +
               str(batch.temperature));
  for (std::size_t i = 0; i < n; ++i)
    RV_CHECK(std::isfinite(batch.mask[i]) && batch.mask[i] >= 0, op,
             "mask[" + str(i) + "] is " + str(batch.mask[i]) + "; a mask entry is a token's loss weight, a finite number >= 0");
}

// Refuses a shape whose buffers would not fit: ops index with int, so no tensor may reach 2^31
// elements; and the bytes must fit in what the backend has left (plus `freed`, the bytes of the
// shape they replace), so a batch too big for the machine is an error, not an out-of-memory kill.
void Model::check_fits(const char* op, const std::string& what, const ShapeCost& cost, std::size_t freed) const {
  RV_CHECK(cost.largest <= static_cast<std::size_t>(INT_MAX), op,
           what + " is too large for this model: one tensor would hold " + str(cost.largest) +
               " elements, more than 2^31 - 1; use a smaller batch");
  const MemoryBudget budget = memory_budget(*be_);
  const std::size_t avail = budget.bytes > SIZE_MAX - freed ? SIZE_MAX : budget.bytes + freed;
  RV_CHECK(cost.bytes <= avail, op,
           what + " needs about " + str(cost.bytes) + " bytes of activations, more than the " + str(avail) +
               " bytes available (" + budget.source + "); use a smaller batch or mini-batch");
}

// A step needs at least one scored token: position 0 is never scored (nothing predicts it).
void Model::require_scored(const TokenBatch& batch, const char* op) {
  for (int b = 0; b < batch.B; ++b)
    for (int t = 1; t < batch.T; ++t)
      if (batch.mask[static_cast<std::size_t>(b) * batch.T + t] != 0) return;
  RV_FAIL(op, "mask is 0 at every scored position (1..T-1 of each row), so the batch has no token to learn from");
}

// Row r = b*T + t - 1 of the logits predicts token (b, t). Returns the per-row loss weight and
// fills targets (-1 where the token is not scored).
std::vector<float> Model::row_targets(const TokenBatch& batch, std::vector<int>& targets) const {
  const int B = batch.B, T = batch.T;
  targets.assign(static_cast<std::size_t>(B) * T, -1);
  std::vector<float> weight(targets.size(), 0.0f);
  for (int b = 0; b < B; ++b)
    for (int t = 1; t < T; ++t) {
      const std::size_t i = static_cast<std::size_t>(b) * T + t;
      if (batch.mask[i] != 0) {
        targets[i - 1] = batch.tokens[i];
        weight[i - 1] = batch.mask[i];
      }
    }
  return weight;
}

// Moves row-indexed values (row r predicts token r+1 of the same sequence) to token positions.
static std::vector<float> rows_to_tokens(const std::vector<float>& rows, const std::vector<float>& weight, int B, int T) {
  std::vector<float> out(rows.size(), 0.0f);
  for (int b = 0; b < B; ++b)
    for (int t = 1; t < T; ++t) {
      const std::size_t i = static_cast<std::size_t>(b) * T + t;
      if (weight[i - 1] != 0) out[i] = rows[i - 1];
    }
  return out;
}

// Token-position arrays (advantages, returns, ...) to row indexing.
static std::vector<float> tokens_to_rows(const std::vector<float>& tok, int B, int T) {
  std::vector<float> rows(tok.size(), 0.0f);
  for (int b = 0; b < B; ++b)
    for (int t = 1; t < T; ++t) {
      const std::size_t i = static_cast<std::size_t>(b) * T + t;
      rows[i - 1] = tok[i];
    }
  return rows;
}

std::vector<float> Model::logprobs(const TokenBatch& batch, bool adapters) {
  validate(batch, "logprobs");
  // Switched back on however this call ends (an error included).
  struct Restore {
    bool& on;
    ~Restore() { on = true; }
  } restore{adapters_on_};
  adapters_on_ = adapters;
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  const std::size_t n = targets.size();
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  be_->upload(a.targets.get(), targets.data(), n * sizeof(int));
  forward(a, false);
  head_logprobs(a, batch.temperature, false);
  std::vector<float> rows(n);
  be_->download(rows.data(), a.lp.get(), n * sizeof(float));
  return rows_to_tokens(rows, weight, batch.B, batch.T);
}

std::vector<float> Model::values(const TokenBatch& batch) {
  validate(batch, "values");
  RV_CHECK(cfg_.value_head, "values", "this model has no value head (create it with valueHead: true)");
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  const std::size_t n = targets.size();
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  forward(a, true);
  std::vector<float> rows(n);
  be_->download(rows.data(), a.values.get(), n * sizeof(float));
  return rows_to_tokens(rows, weight, batch.B, batch.T);
}

PolicyStats Model::policy_gradients(const PolicyBatch& batch, const PolicyLossConfig& loss) {
  queue_policy_gradients(batch, loss);
  return policy_stats(read_stats());
}

ValueStats Model::value_gradients(const ValueBatch& batch, float clip_range) {
  queue_value_gradients(batch, clip_range);
  return value_stats(read_stats());
}

PolicyStats Model::policy_stats(const std::vector<double>& h) {
  return PolicyStats{h[kPolicyPg], h[kPolicyKl], h[kPolicyEntropy], h[kPolicyClipFrac], h[kPolicyApproxKl],
                     std::sqrt(h[kStatGradSquares]), h[kPolicyTotal]};
}

ValueStats Model::value_stats(const std::vector<double>& h) {
  return ValueStats{h[kValueLoss], h[kValueClipFrac], std::sqrt(h[kStatGradSquares])};
}

// The forward pass, the loss and the backward pass, queued: the statistics and the gradient's sum
// of squares land in stats_, for the caller to read.
void Model::queue_policy_gradients(const PolicyBatch& batch, const PolicyLossConfig& loss) {
  validate(batch, "policyStep");
  // LoRA dropout applies while this step computes, with its seed; off again however it ends.
  struct Training {
    bool& on;
    ~Training() { on = false; }
  } training{lora_training_};
  lora_training_ = true;
  lora_dropout_seed_ = batch.dropout_seed;
  require_scored(batch, "policyStep");
  const std::size_t n = static_cast<std::size_t>(batch.B) * batch.T;
  RV_CHECK(batch.advantages.size() == n && batch.old_logprobs.size() == n &&
               (batch.ref_logprobs.empty() || batch.ref_logprobs.size() == n),
           "policyStep", "advantages, oldLogprobs (and refLogprobs) must hold B*T values");
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  be_->upload(a.targets.get(), targets.data(), n * sizeof(int));
  forward(a, false);
  head_logprobs(a, batch.temperature, true);
  // The loss, its gradient and the gradient norm stay on the device; the statistics come back in
  // one copy at the end.
  const bool with_ref = !batch.ref_logprobs.empty();
  upload_rows(a.weight.get(), weight);
  upload_rows(a.adv.get(), tokens_to_rows(batch.advantages, batch.B, batch.T));
  upload_rows(a.old.get(), tokens_to_rows(batch.old_logprobs, batch.B, batch.T));
  if (with_ref) upload_rows(a.ref.get(), tokens_to_rows(batch.ref_logprobs, batch.B, batch.T));
  double* stats = step_stats();
  be_->policy_loss_forward(a.dlp.get(), a.dent.get(), stats, a.lp.get(), a.entropy.get(), a.weight.get(), a.adv.get(),
                           a.old.get(), with_ref ? a.ref.get() : nullptr, static_cast<int>(n), loss);
  const Trained t = trained();
  be_->zero(t.g, t.n * sizeof(float));
  backward(a, batch.temperature, true, false);
  be_->sum_squares_accumulate(stats + kStatGradSquares, t.g, t.n);
}

void Model::queue_value_gradients(const ValueBatch& batch, float clip_range) {
  validate(batch, "valueStep");
  require_scored(batch, "valueStep");
  RV_CHECK(cfg_.value_head, "valueStep", "this model has no value head (create it with valueHead: true)");
  const std::size_t n = static_cast<std::size_t>(batch.B) * batch.T;
  RV_CHECK(batch.returns.size() == n && batch.old_values.size() == n, "valueStep",
           "returns and oldValues must hold B*T values");
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  forward(a, true);
  upload_rows(a.weight.get(), weight);
  upload_rows(a.adv.get(), tokens_to_rows(batch.returns, batch.B, batch.T));
  upload_rows(a.old.get(), tokens_to_rows(batch.old_values, batch.B, batch.T));
  double* stats = step_stats();
  be_->value_loss_forward(a.dvalues.get(), stats, a.values.get(), a.weight.get(), a.adv.get(), a.old.get(),
                          static_cast<int>(n), clip_range);
  const Trained t = trained();
  be_->zero(t.g, t.n * sizeof(float));
  backward(a, 1.0f, false, true);
  be_->sum_squares_accumulate(stats + kStatGradSquares, t.g, t.n);
}

// The step's statistics in backend memory (stats_), zeroed: the loss's (PolicyStat or ValueStat
// order), then the gradient's sum of squares and the finite-update probe's verdict.
double* Model::step_stats() {
  if (!stats_.get()) {
    stats_ = DeviceBuffer<double>(be_.get(), kStatCount);
    clip_ = DeviceBuffer<float>(be_.get(), 1);
  }
  be_->zero(stats_.get(), kStatCount * sizeof(double));
  return stats_.get();
}

// The loss's statistics and the sums of squares: one copy from the backend.
std::vector<double> Model::read_stats() {
  std::vector<double> h(kStatCount);
  be_->download(h.data(), stats_.get(), kStatCount * sizeof(double));
  return h;
}

void Model::upload_rows(float* dst, const std::vector<float>& rows) {
  be_->upload(dst, rows.data(), rows.size() * sizeof(float));
}

// Queues the probe of the update with the clipping factor computed on the backend from the
// gradient's sum of squares (clip_scale): stats_[kStatUpdateProbe] stays finite exactly when every
// weight and moment the update would produce is finite. The probe evaluates the update's own
// element formula (core/adamw_element.h) without writing, which is what lets a refused step leave
// the weights as they were.
void Model::queue_update_probe(const OptimConfig& o, TensorSpec::Group skip) {
  const Trained t = trained();
  be_->clip_scale(clip_.get(), stats_.get() + kStatGradSquares, o.max_grad_norm);
  for (const TensorSpec& s : *t.specs) {
    if (s.group == skip) continue;
    be_->adamw_probe(stats_.get() + kStatUpdateProbe, t.p + s.offset, t.g + s.offset, t.m + s.offset, t.v + s.offset,
                     s.size, o.lr, o.beta1, o.beta2, o.eps, s.decay ? o.weight_decay : 0.0f, step_ + 1, clip_.get());
  }
}

// With the step's statistics read (h): refuses a step whose loss or gradient is not finite, or whose
// update would not be (the probe's verdict), before the optimizer touches anything; else applies
// the update with the clipping factor already on the backend.
void Model::check_owns_weights(const char* op) {
  RV_CHECK(!computes_from_external(), op,
           "this model computes from weights it does not own (computeFrom: a shared segment); it cannot train "
           "(loadParamsFrom or setState first gives it its own copy)");
}

void Model::apply_update(const char* op, const OptimConfig& o, TensorSpec::Group skip, double loss,
                         const std::vector<double>& h) {
  const double grad_norm = std::sqrt(h[kStatGradSquares]);
  RV_CHECK(std::isfinite(loss) && std::isfinite(grad_norm), op,
           "loss or gradient is not finite (loss " + str(loss) + ", grad norm " + str(grad_norm) + "); weights left unchanged");
  RV_CHECK(std::isfinite(h[kStatUpdateProbe]), op,
           "the update would make a weight or an AdamW moment NaN or infinite (lr " + str(o.lr) + ", weightDecay " +
               str(o.weight_decay) + ", grad norm " + str(grad_norm) + "); weights, moments and step left unchanged");
  const Trained t = trained();
  const int step = step_ + 1;
  for (const TensorSpec& s : *t.specs) {
    if (s.group == skip) continue;  // the head this loss does not train keeps weights and moments
    be_->adamw_update(t.p + s.offset, t.g + s.offset, t.m + s.offset, t.v + s.offset, s.size, o.lr, o.beta1, o.beta2,
                      o.eps, s.decay ? o.weight_decay : 0.0f, step, clip_.get());
  }
  step_ = step;
}

// A step reads its scalars once: the loss's statistics, the gradient's norm and the probe's verdict
// come back in one copy, after everything that produces them is queued.
PolicyStats Model::policy_step(const PolicyBatch& batch, const PolicyLossConfig& loss, const OptimConfig& optim) {
  check_optim("policyStep", optim);  // before the forward pass: a bad setting costs nothing
  check_owns_weights("policyStep");
  queue_policy_gradients(batch, loss);
  queue_update_probe(optim, TensorSpec::ValueHead);
  const std::vector<double> h = read_stats();
  const PolicyStats s = policy_stats(h);
  apply_update("policyStep", optim, TensorSpec::ValueHead, s.loss, h);
  return s;
}

ValueStats Model::value_step(const ValueBatch& batch, float clip_range, const OptimConfig& optim) {
  check_optim("valueStep", optim);
  check_owns_weights("valueStep");
  queue_value_gradients(batch, clip_range);
  queue_update_probe(optim, TensorSpec::LmHead);
  const std::vector<double> h = read_stats();
  const ValueStats s = value_stats(h);
  apply_update("valueStep", optim, TensorSpec::LmHead, s.vf_loss, h);
  return s;
}

std::vector<float> Model::gradients() {
  const Trained t = trained();
  std::vector<float> g(t.n);
  be_->download(g.data(), t.g, t.n * sizeof(float));
  return g;
}

ModelState Model::get_state() {
  const Trained t = trained();
  ModelState s;
  s.params.resize(t.n);
  s.adam_m.resize(t.n);
  s.adam_v.resize(t.n);
  be_->download(s.params.data(), t.p, t.n * sizeof(float));
  be_->download(s.adam_m.data(), t.m, t.n * sizeof(float));
  be_->download(s.adam_v.data(), t.v, t.n * sizeof(float));
  s.step = step_;
  return s;
}

void Model::set_state(const ModelState& s) {
  own_trained();
  const Trained t = trained();
  RV_CHECK(s.params.size() == t.n && s.adam_m.size() == t.n && s.adam_v.size() == t.n, "setState",
           "state arrays must each hold " + str(t.n) + (lora_on() ? " floats (the LoRA adapters)" : " floats") +
               " for this config, got params " + str(s.params.size()) + ", adamM " + str(s.adam_m.size()) + ", adamV " +
               str(s.adam_v.size()));
  RV_CHECK(s.step >= 0, "setState", "step must be >= 0, got " + str(s.step));
  be_->upload(t.p, s.params.data(), t.n * sizeof(float));
  be_->upload(t.m, s.adam_m.data(), t.n * sizeof(float));
  be_->upload(t.v, s.adam_v.data(), t.n * sizeof(float));
  step_ = s.step;
}

void Model::copy_params_to(float* dst) { be_->download(dst, trained().p, num_trained() * sizeof(float)); }

void Model::load_params_from(const float* src) {
  own_trained();
  be_->upload(trained().p, src, num_trained() * sizeof(float));
}

void Model::compute_from(float* external) {
  RV_CHECK(be_->name() == "cpu", "computeFrom",
           "a model on " + be_->name() + " cannot compute from host memory; use loadParamsFrom, which copies");
  trained_buffer() = DeviceBuffer<float>::borrowed(external, num_trained());
}

void Model::own_trained() {
  DeviceBuffer<float>& b = trained_buffer();
  if (b.owned()) return;
  DeviceBuffer<float> own(be_.get(), num_trained());
  be_->copy(own.get(), b.get(), num_trained() * sizeof(float));
  b = std::move(own);
}

// The pooled buffers, grown to fit B rows, a prefill of `prefill` positions and caches of
// `positions` per row. A request that fits what is held allocates nothing.
Model::Decode& Model::decode_for(int B, int prefill, int positions) {
  const std::size_t uB = B, rows = uB * prefill, cache = kv_cache_floats(uB, positions, d_.kvC);
  const std::size_t span = positions;
  if (decode_ && rows <= decode_->rows && uB <= decode_->batch && cache <= decode_->cache && span <= decode_->span)
    return *decode_;
  const std::size_t want_rows = std::max(rows, decode_ ? decode_->rows : 0);
  const std::size_t want_batch = std::max(uB, decode_ ? decode_->batch : 0);
  const std::size_t want_cache = std::max(cache, decode_ ? decode_->cache : 0);
  const std::size_t want_span = std::max(span, decode_ ? decode_->span : 0);
  const ShapeCost cost = decode_cost(cfg_, want_rows, want_batch, want_cache, want_span);
  check_fits("generate", str(B) + " prompts", cost, decode_bytes_);
  decode_.reset();  // give the old buffers back before taking the new ones
  decode_bytes_ = 0;
  Backend* be = be_.get();
  auto s = std::make_unique<Decode>();
  s->rows = want_rows;
  s->batch = want_batch;
  s->cache = want_cache;
  s->span = want_span;
  const std::size_t C = d_.C, L = cfg_.layers;
  for (DeviceBuffer<float>* b : {&s->x, &s->ln, &s->tmp}) *b = DeviceBuffer<float>(be, want_rows * C);
  s->atty = DeviceBuffer<float>(be, want_rows * d_.qC);
  if (cfg_.qk_norm) {
    s->q_rstd = DeviceBuffer<float>(be, want_rows * d_.NH);
    s->k_rstd = DeviceBuffer<float>(be, want_rows * d_.NKV);
  }
  s->mean = DeviceBuffer<float>(be, want_rows);
  s->rstd = DeviceBuffer<float>(be, want_rows);
  s->qkv = DeviceBuffer<float>(be, want_rows * d_.qkv);
  s->fch = DeviceBuffer<float>(be, want_rows * d_.mlp_in);
  s->fchg = DeviceBuffer<float>(be, want_rows * d_.mlp_hidden);
  for (DeviceBuffer<float>* b : {&s->logits, &s->filtered}) *b = DeviceBuffer<float>(be, want_batch * d_.Vs);
  s->vals = DeviceBuffer<float>(be, want_batch);
  s->lp = DeviceBuffer<float>(be, want_batch);
  s->kcache = DeviceBuffer<float>(be, L * want_cache);
  s->vcache = DeviceBuffer<float>(be, L * want_cache);
  s->tok = DeviceBuffer<int>(be, want_rows);
  s->next = DeviceBuffer<int>(be, want_batch);
  s->feed = DeviceBuffer<int>(be, feed_ints(want_rows, want_batch, want_span));
  s->record = DeviceBuffer<int>(be, record_ints(want_batch, want_span));
  decode_ = std::move(s);
  decode_bytes_ = cost.bytes;
  return *decode_;
}

// Every block over B rows of T positions from pos0, on the input embedded in s.x; each layer's
// caches hold B rows of `positions` positions (this request's layout of the pooled buffers).
void Model::decode_blocks(Decode& s, int B, int T, int pos0, int positions) {
  const std::size_t per_layer = kv_cache_floats(B, positions, d_.kvC);
  const BlockIO io = s.io();
  for (int l = 0; l < cfg_.layers; ++l)
    block_forward(layer(params_.get(), l), l, io, s.x.get(), B, T, pos0, s.kcache.get() + l * per_layer,
                  s.vcache.get() + l * per_layer, positions);
}

// Batched sampling with a KV cache. The positions every prompt has (the shortest prompt's length)
// are prefilled for all rows in one pass; then all rows advance one position per step in lockstep:
// a row still reading its prompt is fed the prompt token, afterwards its own last sample. Rows that
// are finished keep computing (cheap at these sizes) but nothing more is recorded for them.
//
// The loop runs on the backend from end to end: the prompts go up in one upload, each step's input
// tokens are built from them and from the samples where the samples are drawn (decode_feed), each
// draw is recorded there (decode_record), and the results come back in one download at the end,
// the one time the host waits for the device. Whether every row is done (an end-of-sequence id may
// end all rows early) is read with Backend::poll, which never waits: on a device the answer trails
// the queued work, so the loop may queue a few steps past the last row's end, which record nothing
// (a done row records no more) and whose draws no row uses: the results are those of a loop that
// stopped at once. Without an early end the loop stops at the last position a row can sample.
GenerateResult Model::generate(const std::vector<std::vector<int>>& prompts, const GenerateOptions& opt) {
  const char* op = "generate";
  const int B = static_cast<int>(prompts.size());
  RV_CHECK(B >= 1, op, "prompts must hold at least one row");
  RV_CHECK(opt.max_new_tokens >= 1, op, "maxNewTokens must be >= 1, got " + str(opt.max_new_tokens));
  RV_CHECK(std::isfinite(opt.temperature) && opt.temperature >= 0, op,
           "temperature must be a finite number >= 0, got " + str(opt.temperature));
  RV_CHECK(opt.top_k >= 0, op, "topK must be an integer >= 0 (0: off), got " + str(opt.top_k));
  RV_CHECK(std::isfinite(opt.top_p) && opt.top_p > 0 && opt.top_p <= 1, op,
           "topP must be in (0, 1] (1: off), got " + str(opt.top_p));
  int shortest = cfg_.context, longest = 0;
  for (int b = 0; b < B; ++b) {
    const int len = static_cast<int>(prompts[b].size());
    RV_CHECK(len >= 1, op, "prompt " + str(b) + " is empty; every prompt needs at least one token");
    RV_CHECK(len + opt.max_new_tokens <= cfg_.context, op,
             "prompt " + str(b) + " length " + str(len) + " + maxNewTokens " + str(opt.max_new_tokens) +
                 " exceeds context " + str(cfg_.context));
    for (int t : prompts[b])
      RV_CHECK(t >= 0 && t < d_.Vs, op,
               "token id " + str(t) + " in prompt " + str(b) + " is outside 0.." + str(d_.Vs - 1) +
                   (d_.Vs < d_.V ? " (validVocab " + str(d_.Vs) + " of " + str(d_.V) + " embedding rows)" : ""));
    shortest = std::min(shortest, len);
    longest = std::max(longest, len);
  }
  // The caches hold what this request reaches, the longest prompt plus its new tokens.
  const int positions = longest + opt.max_new_tokens;
  Decode& s = decode_for(B, shortest, positions);
  Backend& be = *be_;
  const int C = d_.C, V = d_.Vs, P = longest, M = opt.max_new_tokens;
  const std::size_t uB = B, BM = uB * M;

  // One upload: prompt lengths | prompts padded to P | the prefill's B x shortest tokens.
  std::vector<int> feed(uB * (1 + P) + uB * shortest, 0);
  int *h_plen = feed.data(), *h_prompts = h_plen + B, *h_prefill = h_prompts + uB * P;
  for (int b = 0; b < B; ++b) {
    h_plen[b] = static_cast<int>(prompts[b].size());
    std::copy(prompts[b].begin(), prompts[b].end(), h_prompts + static_cast<std::size_t>(b) * P);
    std::copy(prompts[b].begin(), prompts[b].begin() + shortest, h_prefill + static_cast<std::size_t>(b) * shortest);
  }
  be.upload(s.feed.get(), feed.data(), feed.size() * sizeof(int));
  const int *plen = s.feed.get(), *d_prompts = plen + B, *prefill = d_prompts + uB * P;
  // The record: tokens | log-probs | values [B, M] each | lengths | done flags | all done.
  const std::size_t record = BM * 3 + 2 * uB + 1;
  be.zero(s.record.get(), record * sizeof(int));
  int* gen = s.record.get();
  float* gen_lp = reinterpret_cast<float*>(gen + BM);
  float* gen_val = gen_lp + BM;
  int* gen_len = reinterpret_cast<int*>(gen_val + BM);
  int *done = gen_len + B, *all_done = done + B;

  // Prefill: positions 0..shortest-1 of every row, then each row's last one moved to row b of x,
  // where the decoding steps keep their B rows.
  embed(s.x.get(), prefill, B, shortest, 0);
  decode_blocks(s, B, shortest, 0, positions);
  if (shortest > 1)
    for (int b = 0; b < B; ++b)
      be.copy(s.x.get() + static_cast<std::size_t>(b) * C, s.x.get() + (static_cast<std::size_t>(b) * shortest + shortest - 1) * C,
              C * sizeof(float));

  // The last position a row may sample at: the longest prompt's row drawing its M-th token.
  const int last = longest + M - 2;
  for (int pos = shortest - 1; pos <= last; ++pos) {
    if (pos >= shortest) {  // one decoding step: position pos of every row
      be.decode_feed(s.tok.get(), d_prompts, plen, gen, gen_len, B, P, M, pos);
      embed(s.x.get(), s.tok.get(), B, 1, pos);
      decode_blocks(s, B, 1, pos, positions);
    }
    head_forward(s.ln.get(), s.mean.get(), s.rstd.get(), s.x.get(), s.logits.get(), s.filtered.get(), cfg_.value_head ? s.vals.get() : nullptr, B);
    // Drawn from the filtered distribution (already divided by the temperature, hence 1 below),
    // scored under the untruncated one, as logprobs() at this temperature scores it.
    be.sampling_filter_forward(s.logits.get(), s.filtered.get(), s.logits.get(), B, V, opt.temperature, opt.top_k, opt.top_p);
    be.sampling_forward(s.next.get(), s.filtered.get(), B, V, opt.temperature > 0 ? 1.0f : 0.0f, opt.seed, pos);
    be.logprob_forward(s.lp.get(), nullptr, s.logits.get(), s.next.get(), B, V);
    be.decode_record(gen, gen_lp, cfg_.value_head ? gen_val : nullptr, gen_len, done, all_done, s.next.get(), s.lp.get(),
                     s.vals.get(), plen, B, M, pos, opt.eos_token);
    int finished = 0;
    if (be.poll(all_done, &finished) && finished) break;
  }

  std::vector<int> h(record);
  be.download(h.data(), s.record.get(), record * sizeof(int));
  GenerateResult r;
  r.batch = B;
  r.max_new_tokens = M;
  r.tokens.assign(h.begin(), h.begin() + BM);
  r.logprobs.resize(BM);
  std::memcpy(r.logprobs.data(), h.data() + BM, BM * sizeof(float));
  if (cfg_.value_head) {
    r.values.resize(BM);
    std::memcpy(r.values.data(), h.data() + 2 * BM, BM * sizeof(float));
  }
  r.lengths.assign(h.begin() + 3 * BM, h.begin() + 3 * BM + B);
  return r;
}

}  // namespace revenant
