// Model: parameter layout, initialisation, forward/backward, sampling loop, PPO steps, state.
#include "core/model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/philox.h"

namespace revenant {

// Pointers to one block's parameters (or gradients: same layout, different base).
struct Model::Layer {
  float *ln1w, *ln1b, *qkvw, *qkvb, *attprojw, *attprojb, *ln2w, *ln2b, *fcw, *fcb, *fcprojw, *fcprojb;
};

// Activations for one (B, T) shape, plus the gradient scratch the backward pass reuses per layer.
struct Model::Acts {
  int B = 0, T = 0;
  DeviceBuffer<int> tokens, targets;
  DeviceBuffer<float> encoded;
  struct PerLayer {
    DeviceBuffer<float> ln1, ln1_mean, ln1_rstd, qkv, atty, att, attproj, res2, ln2, ln2_mean,
        ln2_rstd, fch, fch_gelu, fcproj, res3;
  };
  std::vector<PerLayer> layers;
  DeviceBuffer<float> lnf, lnf_mean, lnf_rstd, logits, values, lp, entropy;
  // gradients
  DeviceBuffer<float> dres, dln, dqkv, datty, dfch, dfch_gelu, dlogits, dvalues, dlp, dent, dlnf;
};

namespace {

const char* kOp = "model";

template <typename T>
std::string str(const T& v) { return std::to_string(v); }

}  // namespace

std::size_t count_params(const ModelConfig& c) {
  const std::size_t C = c.width, V = c.vocab, T = c.context, L = c.layers;
  std::size_t n = V * C + T * C;
  n += L * (2 * C + 3 * C * C + 3 * C + C * C + C + 2 * C + 4 * C * C + 4 * C + 4 * C * C + C);
  n += 2 * C + V * C;
  if (c.value_head) n += C + 1;
  return n;
}

Model::Model(const ModelConfig& cfg, std::unique_ptr<Backend> backend) : cfg_(cfg), be_(std::move(backend)) {
  // Bounds from native/model_limits.json (compile definitions), the same the config and TS use.
  const auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  const auto range = [](int lo, int hi) { return " must be in " + str(lo) + ".." + str(hi) + ", got "; };
  RV_CHECK(in(cfg.vocab, REVENANT_VOCAB_MIN, REVENANT_VOCAB_MAX), kOp, "vocab" + range(REVENANT_VOCAB_MIN, REVENANT_VOCAB_MAX) + str(cfg.vocab));
  RV_CHECK(in(cfg.context, REVENANT_CONTEXT_MIN, REVENANT_CONTEXT_MAX), kOp, "context" + range(REVENANT_CONTEXT_MIN, REVENANT_CONTEXT_MAX) + str(cfg.context));
  RV_CHECK(in(cfg.layers, REVENANT_LAYERS_MIN, REVENANT_LAYERS_MAX), kOp, "layers" + range(REVENANT_LAYERS_MIN, REVENANT_LAYERS_MAX) + str(cfg.layers));
  RV_CHECK(in(cfg.heads, REVENANT_HEADS_MIN, REVENANT_HEADS_MAX), kOp, "heads" + range(REVENANT_HEADS_MIN, REVENANT_HEADS_MAX) + str(cfg.heads));
  RV_CHECK(in(cfg.width, REVENANT_WIDTH_MIN, REVENANT_WIDTH_MAX) && cfg.width % cfg.heads == 0, kOp,
           "width must be a multiple of heads in " + str(REVENANT_WIDTH_MIN) + ".." + str(REVENANT_WIDTH_MAX) + ", got width " +
               str(cfg.width) + ", heads " + str(cfg.heads));
  build_specs();
  params_ = DeviceBuffer<float>(be_.get(), num_params_);
  grads_ = DeviceBuffer<float>(be_.get(), num_params_);
  m_ = DeviceBuffer<float>(be_.get(), num_params_);
  v_ = DeviceBuffer<float>(be_.get(), num_params_);
  init_weights();
}

Model::~Model() = default;

void Model::build_specs() {
  const int C = cfg_.width, V = cfg_.vocab;
  auto add = [&](const std::string& name, std::vector<int> shape, TensorSpec::Group g) {
    TensorSpec s;
    s.name = name;
    s.shape = shape;
    s.size = 1;
    for (int d : shape) s.size *= static_cast<std::size_t>(d);
    s.offset = num_params_;
    s.group = g;
    s.decay = shape.size() == 2;
    num_params_ += s.size;
    specs_.push_back(s);
  };
  add("wte", {V, C}, TensorSpec::Trunk);
  add("wpe", {cfg_.context, C}, TensorSpec::Trunk);
  for (int l = 0; l < cfg_.layers; ++l) {
    const std::string p = "h" + std::to_string(l) + ".";
    add(p + "ln1.w", {C}, TensorSpec::Trunk);
    add(p + "ln1.b", {C}, TensorSpec::Trunk);
    add(p + "attn.qkv.w", {3 * C, C}, TensorSpec::Trunk);
    add(p + "attn.qkv.b", {3 * C}, TensorSpec::Trunk);
    add(p + "attn.proj.w", {C, C}, TensorSpec::Trunk);
    add(p + "attn.proj.b", {C}, TensorSpec::Trunk);
    add(p + "ln2.w", {C}, TensorSpec::Trunk);
    add(p + "ln2.b", {C}, TensorSpec::Trunk);
    add(p + "mlp.fc.w", {4 * C, C}, TensorSpec::Trunk);
    add(p + "mlp.fc.b", {4 * C}, TensorSpec::Trunk);
    add(p + "mlp.proj.w", {C, 4 * C}, TensorSpec::Trunk);
    add(p + "mlp.proj.b", {C}, TensorSpec::Trunk);
  }
  add("lnf.w", {C}, TensorSpec::Trunk);
  add("lnf.b", {C}, TensorSpec::Trunk);
  add("lm_head.w", {V, C}, TensorSpec::LmHead);
  if (cfg_.value_head) {
    add("value_head.w", {1, C}, TensorSpec::ValueHead);
    add("value_head.b", {1}, TensorSpec::ValueHead);
  }
}

// GPT-2 initialisation: N(0, 0.02), residual projections scaled by 1/sqrt(2L), norms at 1,
// biases at 0. Normals come from Philox(seed, index) so the weights are the same on any backend.
void Model::init_weights() {
  std::vector<float> host(num_params_, 0.0f);
  const double resid_scale = 1.0 / std::sqrt(2.0 * cfg_.layers);
  for (const TensorSpec& s : specs_) {
    const bool is_norm_w = s.name.find("ln") != std::string::npos && s.name.back() == 'w';
    if (is_norm_w) {
      std::fill(host.begin() + s.offset, host.begin() + s.offset + s.size, 1.0f);
      continue;
    }
    if (s.shape.size() != 2) continue;  // biases stay 0
    double std = 0.02;
    if (s.name.find("proj.w") != std::string::npos) std *= resid_scale;
    for (std::size_t i = 0; i < s.size; ++i) {
      const std::size_t idx = s.offset + i;
      const Philox4 r = philox4x32(cfg_.seed, static_cast<uint32_t>(idx), static_cast<uint32_t>(idx >> 32), 0x1A17u, 0);
      const double u1 = (static_cast<double>(r.v[0]) + 1.0) / 4294967296.0;  // (0, 1]
      const double u2 = static_cast<double>(r.v[1]) / 4294967296.0;
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
      host[idx] = static_cast<float>(z * std);
    }
  }
  be_->upload(params_.get(), host.data(), num_params_ * sizeof(float));
}

Model::Layer Model::layer(float* base, int l) const {
  const std::size_t first = 2 + static_cast<std::size_t>(l) * 12;
  auto p = [&](int i) { return base + specs_[first + i].offset; };
  return Layer{p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10), p(11)};
}

Model::Acts& Model::acts_for(int B, int T) {
  if (acts_ && acts_->B == B && acts_->T == T) return *acts_;
  acts_.reset();  // free the old shape before allocating the new one
  auto a = std::make_unique<Acts>();
  Backend* be = be_.get();
  const std::size_t BT = static_cast<std::size_t>(B) * T, C = cfg_.width, V = cfg_.vocab;
  const std::size_t NH = cfg_.heads;
  a->B = B;
  a->T = T;
  a->tokens = DeviceBuffer<int>(be, BT);
  a->targets = DeviceBuffer<int>(be, BT);
  a->encoded = DeviceBuffer<float>(be, BT * C);
  a->layers.resize(cfg_.layers);
  for (auto& l : a->layers) {
    l.ln1 = DeviceBuffer<float>(be, BT * C);
    l.ln1_mean = DeviceBuffer<float>(be, BT);
    l.ln1_rstd = DeviceBuffer<float>(be, BT);
    l.qkv = DeviceBuffer<float>(be, BT * 3 * C);
    l.atty = DeviceBuffer<float>(be, BT * C);
    l.att = DeviceBuffer<float>(be, B * NH * T * T);
    l.attproj = DeviceBuffer<float>(be, BT * C);
    l.res2 = DeviceBuffer<float>(be, BT * C);
    l.ln2 = DeviceBuffer<float>(be, BT * C);
    l.ln2_mean = DeviceBuffer<float>(be, BT);
    l.ln2_rstd = DeviceBuffer<float>(be, BT);
    l.fch = DeviceBuffer<float>(be, BT * 4 * C);
    l.fch_gelu = DeviceBuffer<float>(be, BT * 4 * C);
    l.fcproj = DeviceBuffer<float>(be, BT * C);
    l.res3 = DeviceBuffer<float>(be, BT * C);
  }
  a->lnf = DeviceBuffer<float>(be, BT * C);
  a->lnf_mean = DeviceBuffer<float>(be, BT);
  a->lnf_rstd = DeviceBuffer<float>(be, BT);
  a->logits = DeviceBuffer<float>(be, BT * V);
  a->values = DeviceBuffer<float>(be, BT);
  a->lp = DeviceBuffer<float>(be, BT);
  a->entropy = DeviceBuffer<float>(be, BT);
  a->dres = DeviceBuffer<float>(be, BT * C);
  a->dln = DeviceBuffer<float>(be, BT * C);
  a->dqkv = DeviceBuffer<float>(be, BT * 3 * C);
  a->datty = DeviceBuffer<float>(be, BT * C);
  a->dfch = DeviceBuffer<float>(be, BT * 4 * C);
  a->dfch_gelu = DeviceBuffer<float>(be, BT * 4 * C);
  a->dlogits = DeviceBuffer<float>(be, BT * V);
  a->dvalues = DeviceBuffer<float>(be, BT);
  a->dlp = DeviceBuffer<float>(be, BT);
  a->dent = DeviceBuffer<float>(be, BT);
  a->dlnf = DeviceBuffer<float>(be, BT * C);
  acts_ = std::move(a);
  return *acts_;
}

void Model::forward(Acts& a, bool want_logits, bool want_values) {
  Backend& be = *be_;
  const int B = a.B, T = a.T, C = cfg_.width, V = cfg_.vocab, NH = cfg_.heads, BT = B * T;
  float* P = params_.get();
  be.embedding_forward(a.encoded.get(), a.tokens.get(), P + specs_[0].offset, P + specs_[1].offset, B, T, C, 0);
  const float* residual = a.encoded.get();
  for (int l = 0; l < cfg_.layers; ++l) {
    const Layer w = layer(P, l);
    Acts::PerLayer& x = a.layers[l];
    be.layernorm_forward(x.ln1.get(), x.ln1_mean.get(), x.ln1_rstd.get(), residual, w.ln1w, w.ln1b, BT, C);
    be.matmul_forward(x.qkv.get(), x.ln1.get(), w.qkvw, w.qkvb, BT, C, 3 * C);
    be.attention_forward(x.atty.get(), x.att.get(), x.qkv.get(), B, T, C, NH);
    be.matmul_forward(x.attproj.get(), x.atty.get(), w.attprojw, w.attprojb, BT, C, C);
    be.residual_forward(x.res2.get(), residual, x.attproj.get(), BT * C);
    be.layernorm_forward(x.ln2.get(), x.ln2_mean.get(), x.ln2_rstd.get(), x.res2.get(), w.ln2w, w.ln2b, BT, C);
    be.matmul_forward(x.fch.get(), x.ln2.get(), w.fcw, w.fcb, BT, C, 4 * C);
    be.gelu_forward(x.fch_gelu.get(), x.fch.get(), BT * 4 * C);
    be.matmul_forward(x.fcproj.get(), x.fch_gelu.get(), w.fcprojw, w.fcprojb, BT, 4 * C, C);
    be.residual_forward(x.res3.get(), x.res2.get(), x.fcproj.get(), BT * C);
    residual = x.res3.get();
  }
  const std::size_t lnf = 2 + static_cast<std::size_t>(cfg_.layers) * 12;
  be.layernorm_forward(a.lnf.get(), a.lnf_mean.get(), a.lnf_rstd.get(), residual, P + specs_[lnf].offset,
                       P + specs_[lnf + 1].offset, BT, C);
  if (want_logits) be.matmul_forward(a.logits.get(), a.lnf.get(), P + specs_[lnf + 2].offset, nullptr, BT, C, V);
  if (want_values) {
    RV_CHECK(cfg_.value_head, kOp, "this model has no value head (create it with valueHead: true)");
    be.matmul_forward(a.values.get(), a.lnf.get(), P + specs_[lnf + 3].offset, P + specs_[lnf + 4].offset, BT, C, 1);
  }
}

// Backward from dlogits and/or dvalues (already in a). The residual stream's gradient is kept in
// one buffer (dres): a residual add passes its gradient through unchanged, so each block's
// branches accumulate into dres in place, which is residual_backward without the copies.
void Model::backward(Acts& a, bool with_logits, bool with_values) {
  Backend& be = *be_;
  const int B = a.B, T = a.T, C = cfg_.width, V = cfg_.vocab, NH = cfg_.heads, BT = B * T;
  const std::size_t bytes = static_cast<std::size_t>(BT) * C * sizeof(float);
  float* P = params_.get();
  float* G = grads_.get();
  const std::size_t lnf = 2 + static_cast<std::size_t>(cfg_.layers) * 12;
  be.zero(a.dlnf.get(), bytes);
  be.zero(a.dres.get(), bytes);
  if (with_logits)
    be.matmul_backward(a.dlnf.get(), G + specs_[lnf + 2].offset, nullptr, a.dlogits.get(), a.lnf.get(),
                       P + specs_[lnf + 2].offset, BT, C, V);
  if (with_values)
    be.matmul_backward(a.dlnf.get(), G + specs_[lnf + 3].offset, G + specs_[lnf + 4].offset, a.dvalues.get(),
                       a.lnf.get(), P + specs_[lnf + 3].offset, BT, C, 1);
  const float* last = cfg_.layers > 0 ? a.layers.back().res3.get() : a.encoded.get();
  be.layernorm_backward(a.dres.get(), G + specs_[lnf].offset, G + specs_[lnf + 1].offset, a.dlnf.get(), last,
                        P + specs_[lnf].offset, a.lnf_mean.get(), a.lnf_rstd.get(), BT, C);
  for (int l = cfg_.layers - 1; l >= 0; --l) {
    const Layer w = layer(P, l), g = layer(G, l);
    Acts::PerLayer& x = a.layers[l];
    const float* residual = l == 0 ? a.encoded.get() : a.layers[l - 1].res3.get();
    // MLP branch: res3 = res2 + fcproj(gelu(fc(ln2(res2))))
    be.zero(a.dfch_gelu.get(), bytes * 4);
    be.matmul_backward(a.dfch_gelu.get(), g.fcprojw, g.fcprojb, a.dres.get(), x.fch_gelu.get(), w.fcprojw, BT, 4 * C, C);
    be.zero(a.dfch.get(), bytes * 4);
    be.gelu_backward(a.dfch.get(), x.fch.get(), a.dfch_gelu.get(), BT * 4 * C);
    be.zero(a.dln.get(), bytes);
    be.matmul_backward(a.dln.get(), g.fcw, g.fcb, a.dfch.get(), x.ln2.get(), w.fcw, BT, C, 4 * C);
    be.layernorm_backward(a.dres.get(), g.ln2w, g.ln2b, a.dln.get(), x.res2.get(), w.ln2w, x.ln2_mean.get(),
                          x.ln2_rstd.get(), BT, C);
    // Attention branch: res2 = residual + proj(attention(qkv(ln1(residual))))
    be.zero(a.datty.get(), bytes);
    be.matmul_backward(a.datty.get(), g.attprojw, g.attprojb, a.dres.get(), x.atty.get(), w.attprojw, BT, C, C);
    be.zero(a.dqkv.get(), bytes * 3);
    be.attention_backward(a.dqkv.get(), a.datty.get(), x.qkv.get(), x.att.get(), B, T, C, NH);
    be.zero(a.dln.get(), bytes);
    be.matmul_backward(a.dln.get(), g.qkvw, g.qkvb, a.dqkv.get(), x.ln1.get(), w.qkvw, BT, C, 3 * C);
    be.layernorm_backward(a.dres.get(), g.ln1w, g.ln1b, a.dln.get(), residual, w.ln1w, x.ln1_mean.get(),
                          x.ln1_rstd.get(), BT, C);
  }
  be.embedding_backward(G + specs_[0].offset, G + specs_[1].offset, a.dres.get(), a.tokens.get(), B, T, C, 0);
}

void Model::validate(const TokenBatch& batch, const char* op) const {
  RV_CHECK(batch.B >= 1 && batch.T >= 2 && batch.T <= cfg_.context, op,
           "batch shape [" + str(batch.B) + ", " + str(batch.T) + "] must have B >= 1 and 2 <= T <= context (" +
               str(cfg_.context) + ")");
  const std::size_t n = static_cast<std::size_t>(batch.B) * batch.T;
  RV_CHECK(batch.tokens.size() == n && batch.mask.size() == n, op, "tokens and mask must hold B*T values");
  for (std::size_t i = 0; i < n; ++i)
    RV_CHECK(batch.tokens[i] >= 0 && batch.tokens[i] < cfg_.vocab, op,
             "token id " + str(batch.tokens[i]) + " at index " + str(i) + " is outside 0.." + str(cfg_.vocab - 1));
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

std::vector<float> Model::logprobs(const TokenBatch& batch) {
  validate(batch, "logprobs");
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  const std::size_t n = targets.size();
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  be_->upload(a.targets.get(), targets.data(), n * sizeof(int));
  forward(a, true, false);
  be_->logprob_forward(a.lp.get(), a.entropy.get(), a.logits.get(), a.targets.get(), static_cast<int>(n), cfg_.vocab);
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
  forward(a, false, true);
  std::vector<float> rows(n);
  be_->download(rows.data(), a.values.get(), n * sizeof(float));
  return rows_to_tokens(rows, weight, batch.B, batch.T);
}

PolicyStats Model::policy_gradients(const PolicyBatch& batch, const PolicyLossConfig& loss) {
  validate(batch, "policyStep");
  const std::size_t n = static_cast<std::size_t>(batch.B) * batch.T;
  RV_CHECK(batch.advantages.size() == n && batch.old_logprobs.size() == n &&
               (batch.ref_logprobs.empty() || batch.ref_logprobs.size() == n),
           "policyStep", "advantages, oldLogprobs (and refLogprobs) must hold B*T values");
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  be_->upload(a.targets.get(), targets.data(), n * sizeof(int));
  forward(a, true, false);
  be_->logprob_forward(a.lp.get(), a.entropy.get(), a.logits.get(), a.targets.get(), static_cast<int>(n), cfg_.vocab);
  std::vector<float> lp(n), ent(n), dlp(n), dent(n);
  be_->download(lp.data(), a.lp.get(), n * sizeof(float));
  be_->download(ent.data(), a.entropy.get(), n * sizeof(float));
  const std::vector<float> adv = tokens_to_rows(batch.advantages, batch.B, batch.T);
  const std::vector<float> old = tokens_to_rows(batch.old_logprobs, batch.B, batch.T);
  std::vector<float> ref;
  if (!batch.ref_logprobs.empty()) ref = tokens_to_rows(batch.ref_logprobs, batch.B, batch.T);
  const PolicyLossStats s = policy_loss(lp.data(), ent.data(), weight.data(), adv.data(), old.data(),
                                        ref.empty() ? nullptr : ref.data(), n, loss, dlp.data(), dent.data());
  be_->upload(a.dlp.get(), dlp.data(), n * sizeof(float));
  be_->upload(a.dent.get(), dent.data(), n * sizeof(float));
  be_->logprob_backward(a.dlogits.get(), a.logits.get(), a.targets.get(), a.dlp.get(), a.dent.get(),
                        static_cast<int>(n), cfg_.vocab);
  be_->zero(grads_.get(), num_params_ * sizeof(float));
  backward(a, true, false);
  const double norm = std::sqrt(be_->sum_squares(grads_.get(), num_params_));
  return PolicyStats{s.pg_loss, s.kl_loss, s.entropy, s.clip_frac, s.approx_kl, norm, s.total};
}

ValueStats Model::value_gradients(const ValueBatch& batch, float clip_range) {
  validate(batch, "valueStep");
  RV_CHECK(cfg_.value_head, "valueStep", "this model has no value head (create it with valueHead: true)");
  const std::size_t n = static_cast<std::size_t>(batch.B) * batch.T;
  RV_CHECK(batch.returns.size() == n && batch.old_values.size() == n, "valueStep",
           "returns and oldValues must hold B*T values");
  Acts& a = acts_for(batch.B, batch.T);
  std::vector<int> targets;
  const std::vector<float> weight = row_targets(batch, targets);
  be_->upload(a.tokens.get(), batch.tokens.data(), n * sizeof(int));
  forward(a, false, true);
  std::vector<float> vals(n), dvals(n);
  be_->download(vals.data(), a.values.get(), n * sizeof(float));
  const std::vector<float> ret = tokens_to_rows(batch.returns, batch.B, batch.T);
  const std::vector<float> old = tokens_to_rows(batch.old_values, batch.B, batch.T);
  const ValueLossStats s = value_loss(vals.data(), weight.data(), ret.data(), old.data(), n, clip_range, dvals.data());
  be_->upload(a.dvalues.get(), dvals.data(), n * sizeof(float));
  be_->zero(grads_.get(), num_params_ * sizeof(float));
  backward(a, false, true);
  const double norm = std::sqrt(be_->sum_squares(grads_.get(), num_params_));
  return ValueStats{s.vf_loss, s.vf_clip_frac, norm};
}

void Model::optimizer_step(const OptimConfig& o, TensorSpec::Group skip, double grad_norm) {
  ++step_;
  float scale = 1.0f;
  if (o.max_grad_norm > 0 && grad_norm > o.max_grad_norm)
    scale = static_cast<float>(o.max_grad_norm / (grad_norm + 1e-6));
  for (const TensorSpec& s : specs_) {
    if (s.group == skip) continue;  // the head this loss does not train keeps weights and moments
    be_->adamw_update(params_.get() + s.offset, grads_.get() + s.offset, m_.get() + s.offset, v_.get() + s.offset,
                      s.size, o.lr, o.beta1, o.beta2, o.eps, s.decay ? o.weight_decay : 0.0f, step_, scale);
  }
}

// A step whose loss or gradient is not finite is refused before the optimizer touches anything.
void Model::step_if_finite(const char* op, double loss, double grad_norm, const OptimConfig& optim, TensorSpec::Group skip) {
  RV_CHECK(std::isfinite(loss) && std::isfinite(grad_norm), op,
           "loss or gradient is not finite (loss " + str(loss) + ", grad norm " + str(grad_norm) + "); weights left unchanged");
  optimizer_step(optim, skip, grad_norm);
}

PolicyStats Model::policy_step(const PolicyBatch& batch, const PolicyLossConfig& loss, const OptimConfig& optim) {
  const PolicyStats s = policy_gradients(batch, loss);
  step_if_finite("policyStep", s.loss, s.grad_norm, optim, TensorSpec::ValueHead);
  return s;
}

ValueStats Model::value_step(const ValueBatch& batch, float clip_range, const OptimConfig& optim) {
  const ValueStats s = value_gradients(batch, clip_range);
  step_if_finite("valueStep", s.vf_loss, s.grad_norm, optim, TensorSpec::LmHead);
  return s;
}

std::vector<float> Model::gradients() {
  std::vector<float> g(num_params_);
  be_->download(g.data(), grads_.get(), num_params_ * sizeof(float));
  return g;
}

ModelState Model::get_state() {
  ModelState s;
  s.params.resize(num_params_);
  s.adam_m.resize(num_params_);
  s.adam_v.resize(num_params_);
  be_->download(s.params.data(), params_.get(), num_params_ * sizeof(float));
  be_->download(s.adam_m.data(), m_.get(), num_params_ * sizeof(float));
  be_->download(s.adam_v.data(), v_.get(), num_params_ * sizeof(float));
  s.step = step_;
  return s;
}

void Model::set_state(const ModelState& s) {
  RV_CHECK(s.params.size() == num_params_ && s.adam_m.size() == num_params_ && s.adam_v.size() == num_params_,
           "setState",
           "state arrays must each hold " + str(num_params_) + " floats for this config, got params " +
               str(s.params.size()) + ", adamM " + str(s.adam_m.size()) + ", adamV " + str(s.adam_v.size()));
  RV_CHECK(s.step >= 0, "setState", "step must be >= 0, got " + str(s.step));
  be_->upload(params_.get(), s.params.data(), num_params_ * sizeof(float));
  be_->upload(m_.get(), s.adam_m.data(), num_params_ * sizeof(float));
  be_->upload(v_.get(), s.adam_v.data(), num_params_ * sizeof(float));
  step_ = s.step;
}

// Batched sampling with a KV cache. All rows advance one position per step in lockstep; a row
// still reading its prompt is fed the prompt token, afterwards its own last sample. Rows that
// are finished keep computing (cheap at these sizes) but nothing more is recorded for them.
GenerateResult Model::generate(const std::vector<std::vector<int>>& prompts, const GenerateOptions& opt) {
  const char* op = "generate";
  const int B = static_cast<int>(prompts.size());
  RV_CHECK(B >= 1, op, "prompts must hold at least one row");
  RV_CHECK(opt.max_new_tokens >= 1, op, "maxNewTokens must be >= 1, got " + str(opt.max_new_tokens));
  RV_CHECK(std::isfinite(opt.temperature) && opt.temperature >= 0, op,
           "temperature must be a finite number >= 0, got " + str(opt.temperature));
  for (int b = 0; b < B; ++b) {
    const int len = static_cast<int>(prompts[b].size());
    RV_CHECK(len >= 1, op, "prompt " + str(b) + " is empty; every prompt needs at least one token");
    RV_CHECK(len + opt.max_new_tokens <= cfg_.context, op,
             "prompt " + str(b) + " length " + str(len) + " + maxNewTokens " + str(opt.max_new_tokens) +
                 " exceeds context " + str(cfg_.context));
    for (int t : prompts[b])
      RV_CHECK(t >= 0 && t < cfg_.vocab, op,
               "token id " + str(t) + " in prompt " + str(b) + " is outside 0.." + str(cfg_.vocab - 1));
  }
  Backend& be = *be_;
  const int C = cfg_.width, V = cfg_.vocab, NH = cfg_.heads, Tmax = cfg_.context, L = cfg_.layers;
  const std::size_t uB = B, uC = C;
  DeviceBuffer<float> x(&be, uB * C), ln(&be, uB * C), mean(&be, uB), rstd(&be, uB), qkv(&be, uB * 3 * C),
      atty(&be, uB * C), tmp(&be, uB * C), fch(&be, uB * 4 * C), fchg(&be, uB * 4 * C), logits(&be, uB * V),
      vals(&be, uB), lp(&be, uB), ent(&be, uB);
  DeviceBuffer<float> kcache(&be, static_cast<std::size_t>(L) * B * Tmax * uC),
      vcache(&be, static_cast<std::size_t>(L) * B * Tmax * uC);
  DeviceBuffer<int> tok(&be, uB), next(&be, uB);
  float* P = params_.get();
  const std::size_t lnf = 2 + static_cast<std::size_t>(L) * 12;

  GenerateResult r;
  r.batch = B;
  r.max_new_tokens = opt.max_new_tokens;
  r.tokens.assign(uB * opt.max_new_tokens, 0);
  r.logprobs.assign(uB * opt.max_new_tokens, 0.0f);
  if (cfg_.value_head) r.values.assign(uB * opt.max_new_tokens, 0.0f);
  r.lengths.assign(uB, 0);
  std::vector<char> done(uB, 0);
  std::vector<int> host_tok(uB), host_next(uB);
  std::vector<float> host_lp(uB), host_val(uB);

  for (int pos = 0;; ++pos) {
    for (int b = 0; b < B; ++b) {
      const int len = static_cast<int>(prompts[b].size());
      if (pos < len) host_tok[b] = prompts[b][pos];
      else if (pos - len < r.lengths[b]) host_tok[b] = r.tokens[static_cast<std::size_t>(b) * opt.max_new_tokens + (pos - len)];
      else host_tok[b] = 0;  // row finished: its input no longer matters
    }
    be.upload(tok.get(), host_tok.data(), uB * sizeof(int));
    be.embedding_forward(x.get(), tok.get(), P + specs_[0].offset, P + specs_[1].offset, B, 1, C, pos);
    for (int l = 0; l < L; ++l) {
      const Layer w = layer(P, l);
      float* kc = kcache.get() + static_cast<std::size_t>(l) * B * Tmax * C;
      float* vc = vcache.get() + static_cast<std::size_t>(l) * B * Tmax * C;
      be.layernorm_forward(ln.get(), mean.get(), rstd.get(), x.get(), w.ln1w, w.ln1b, B, C);
      be.matmul_forward(qkv.get(), ln.get(), w.qkvw, w.qkvb, B, C, 3 * C);
      be.attention_decode(atty.get(), kc, vc, qkv.get(), B, C, NH, pos, Tmax);
      be.matmul_forward(tmp.get(), atty.get(), w.attprojw, w.attprojb, B, C, C);
      be.residual_forward(x.get(), x.get(), tmp.get(), B * C);
      be.layernorm_forward(ln.get(), mean.get(), rstd.get(), x.get(), w.ln2w, w.ln2b, B, C);
      be.matmul_forward(fch.get(), ln.get(), w.fcw, w.fcb, B, C, 4 * C);
      be.gelu_forward(fchg.get(), fch.get(), B * 4 * C);
      be.matmul_forward(tmp.get(), fchg.get(), w.fcprojw, w.fcprojb, B, 4 * C, C);
      be.residual_forward(x.get(), x.get(), tmp.get(), B * C);
    }
    bool sampling = false;
    for (int b = 0; b < B; ++b) sampling |= !done[b] && pos + 1 >= static_cast<int>(prompts[b].size());
    if (!sampling) continue;  // every row is still reading its prompt
    be.layernorm_forward(ln.get(), mean.get(), rstd.get(), x.get(), P + specs_[lnf].offset, P + specs_[lnf + 1].offset, B, C);
    be.matmul_forward(logits.get(), ln.get(), P + specs_[lnf + 2].offset, nullptr, B, C, V);
    be.sampling_forward(next.get(), logits.get(), B, V, opt.temperature, opt.seed, pos);
    be.logprob_forward(lp.get(), ent.get(), logits.get(), next.get(), B, V);
    be.download(host_next.data(), next.get(), uB * sizeof(int));
    be.download(host_lp.data(), lp.get(), uB * sizeof(float));
    if (cfg_.value_head) {
      be.matmul_forward(vals.get(), ln.get(), P + specs_[lnf + 3].offset, P + specs_[lnf + 4].offset, B, C, 1);
      be.download(host_val.data(), vals.get(), uB * sizeof(float));
    }
    bool all_done = true;
    for (int b = 0; b < B; ++b) {
      if (!done[b] && pos + 1 >= static_cast<int>(prompts[b].size())) {
        const std::size_t i = static_cast<std::size_t>(b) * opt.max_new_tokens + r.lengths[b];
        r.tokens[i] = host_next[b];
        r.logprobs[i] = host_lp[b];
        if (cfg_.value_head) r.values[i] = host_val[b];
        ++r.lengths[b];
        if (r.lengths[b] == opt.max_new_tokens || host_next[b] == opt.eos_token) done[b] = 1;
      }
      all_done &= done[b] != 0;
    }
    if (all_done) break;
  }
  return r;
}

}  // namespace revenant
