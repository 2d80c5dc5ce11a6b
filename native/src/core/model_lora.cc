// Model's LoRA adapters: their layout, initialisation, and the forward and backward terms the
// blocks add beside the frozen projections (W x + scale * B (A x)). The blocks call lora_add and
// lora_grad right after each projection's product and its backward; everything else of the model
// is unchanged, except that the optimizer, the state and the weight copies see the adapters alone
// (Model::trained) and no base weight gets a gradient (the backward is handed a null gradient base).
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/model.h"
#include "core/philox.h"

namespace revenant {

namespace {

const char* kNames[kLoraModules] = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};

std::string str(double v) {
  std::string s = std::to_string(v);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// A module's geometry: input width, output width, where its block starts in the packed output
// rows, and the packed rows' width.
struct Geometry {
  int in, out, offset, ld;
};

Geometry geometry(const ModelDims& d, int module) {
  const int I = d.mlp_hidden;
  switch (module) {
    case LoraQ: return {d.C, d.qC, 0, d.qkv};
    case LoraK: return {d.C, d.kvC, d.qC, d.qkv};
    case LoraV: return {d.C, d.kvC, d.qC + d.kvC, d.qkv};
    case LoraO: return {d.qC, d.C, 0, d.C};
    case LoraGate: return {d.C, I, 0, 2 * I};
    case LoraUp: return {d.C, I, I, 2 * I};
    default: return {I, d.C, 0, d.C};
  }
}

}  // namespace

const char* lora_module_name(int module) { return module >= 0 && module < kLoraModules ? kNames[module] : "?"; }

float lora_scale(const LoraConfig& c) {
  const double alpha = c.alpha > 0 ? c.alpha : 2.0 * c.rank;
  return static_cast<float>(c.rslora ? alpha / std::sqrt(static_cast<double>(c.rank)) : alpha / c.rank);
}

void Model::check_lora_config() const {
  const LoraConfig& l = cfg_.lora;
  const char* op = "model";
  RV_CHECK(l.rank >= 0 && l.rank <= 1024, op, "lora.rank must be an integer in 0..1024 (0: no adapters), got " + std::to_string(l.rank));
  RV_CHECK(l.rank > 0 || !l.bf16_base, op,
           "lora.bf16Base keeps a frozen base in bfloat16: it needs adapters (lora.rank > 0), since a base that trains keeps float32 weights");
  if (l.rank == 0) return;
  RV_CHECK(cfg_.arch == Arch::Llama, op,
           "lora needs arch \"llama\": adapters sit beside the Llama family's q/k/v/o/gate/up/down projections, which arch \"gpt2\" does not have");
  RV_CHECK(!cfg_.value_head, op, "lora trains a policy: a model with a value head (a critic) cannot take adapters");
  RV_CHECK(std::isfinite(l.alpha) && l.alpha >= 0, op, "lora.alpha must be a finite number > 0 (0: 2 * rank), got " + str(l.alpha));
  RV_CHECK(std::isfinite(l.dropout) && l.dropout >= 0 && l.dropout < 1, op,
           "lora.dropout must be a probability in [0, 1), got " + str(l.dropout));
  RV_CHECK(l.modules != 0 && (l.modules & ~kLoraAllModules) == 0, op,
           "lora.modules must name at least one of q_proj k_proj v_proj o_proj gate_proj up_proj down_proj");
}

// The adapters' own flat layout, PEFT's names without its "base_model.model." prefix, layer by
// layer in module order, A then B.
void Model::build_lora_specs() {
  const int r = cfg_.lora.rank;
  lora_slots_.assign(static_cast<std::size_t>(cfg_.layers) * kLoraModules * 2, kAbsent);
  for (int l = 0; l < cfg_.layers; ++l)
    for (int m = 0; m < kLoraModules; ++m) {
      if (!(cfg_.lora.modules & (1u << m))) continue;
      const Geometry g = geometry(d_, m);
      const std::string p = "model.layers." + std::to_string(l) + (m <= LoraO ? ".self_attn." : ".mlp.") + kNames[m];
      for (int ab = 0; ab < 2; ++ab) {
        TensorSpec s;
        s.name = p + (ab == 0 ? ".lora_A.weight" : ".lora_B.weight");
        s.shape = ab == 0 ? std::vector<int>{r, g.in} : std::vector<int>{g.out, r};
        s.size = static_cast<std::size_t>(r) * (ab == 0 ? g.in : g.out);
        s.offset = num_lora_;
        s.group = TensorSpec::Trunk;
        s.decay = true;
        s.init = ab == 0 ? TensorSpec::Normal : TensorSpec::Zeros;  // A drawn (Kaiming-uniform: initial_lora_params), B zero
        lora_slots_[(static_cast<std::size_t>(l) * kLoraModules + m) * 2 + ab] = s.offset;
        num_lora_ += s.size;
        lora_specs_.push_back(s);
      }
    }
  lora_scale_ = lora_scale(cfg_.lora);
}

// PEFT's initialisation: A ~ Kaiming-uniform with a = sqrt(5) (torch's nn.Linear default), which
// is U(-1/sqrt(in), 1/sqrt(in)); B = 0, so a fresh model computes exactly its base. Uniforms from
// Philox(seed, index) under a key of their own, the same on every backend.
std::vector<float> Model::initial_lora_params() const {
  std::vector<float> host(num_lora_, 0.0f);
  for (const TensorSpec& s : lora_specs_) {
    if (s.init == TensorSpec::Zeros) continue;
    const double bound = 1.0 / std::sqrt(static_cast<double>(s.shape[1]));
    for (std::size_t i = 0; i < s.size; ++i) {
      const std::size_t idx = s.offset + i;
      const Philox4 r = philox4x32(cfg_.seed, static_cast<uint32_t>(idx), static_cast<uint32_t>(idx >> 32), 0x10A4u, 0);
      const double u = (static_cast<double>(r.v[0]) + 0.5) / 4294967296.0;  // (0, 1)
      host[idx] = static_cast<float>((2.0 * u - 1.0) * bound);
    }
  }
  return host;
}

void Model::lora_scratch(std::size_t rows) {
  const std::size_t n = rows * static_cast<std::size_t>(cfg_.lora.rank);
  if (lora_u_.size() < n) {
    lora_u_ = DeviceBuffer<float>(be_.get(), n);
    lora_du_ = DeviceBuffer<float>(be_.get(), n);
  }
  // Dropout's masked input and its gradient, as wide as the widest adapter input.
  const std::size_t widest = rows * static_cast<std::size_t>(std::max({d_.C, d_.qC, d_.mlp_hidden}));
  if (lora_training_ && cfg_.lora.dropout > 0 && lora_x_.size() < widest) {
    lora_x_ = DeviceBuffer<float>(be_.get(), widest);
    lora_dx_ = DeviceBuffer<float>(be_.get(), widest);
  }
}

void Model::lora_add(int l, int first, int last, float* out, const float* inp, int N) {
  if (!lora_on() || !adapters_on_) return;
  lora_scratch(static_cast<std::size_t>(N));
  float* P = lora_p_.get();
  for (int m = first; m <= last; ++m) {
    const std::size_t* slot = &lora_slots_[(static_cast<std::size_t>(l) * kLoraModules + m) * 2];
    if (slot[0] == kAbsent) continue;
    const Geometry g = geometry(d_, m);
    const float* x = inp;
    if (dropping()) {  // PEFT's lora_B(lora_A(dropout(x))): one mask per adapter
      be_->lora_dropout_forward(lora_x_.get(), inp, N, g.in, cfg_.lora.dropout, lora_dropout_seed_, l * kLoraModules + m);
      x = lora_x_.get();
    }
    be_->lora_forward(out + g.offset, lora_u_.get(), x, P + slot[0], P + slot[1], N, g.in, g.out, g.ld, cfg_.lora.rank,
                      lora_scale_);
  }
}

void Model::lora_grad(int l, int first, int last, float* dinp, const float* dout, const float* inp, int N) {
  if (!lora_on()) return;
  lora_scratch(static_cast<std::size_t>(N));
  float *P = lora_p_.get(), *G = lora_g_.get();
  for (int m = first; m <= last; ++m) {
    const std::size_t* slot = &lora_slots_[(static_cast<std::size_t>(l) * kLoraModules + m) * 2];
    if (slot[0] == kAbsent) continue;
    const Geometry g = geometry(d_, m);
    if (!dropping()) {
      be_->lora_backward(dinp, G + slot[0], G + slot[1], lora_u_.get(), lora_du_.get(), dout + g.offset, inp, P + slot[0],
                         P + slot[1], N, g.in, g.out, g.ld, cfg_.lora.rank, lora_scale_);
      continue;
    }
    // The forward's masked input again (same seed and stream: same mask), its gradient, then
    // back through the mask into dinp.
    const int stream = l * kLoraModules + m;
    const std::size_t bytes = static_cast<std::size_t>(N) * g.in * sizeof(float);
    be_->lora_dropout_forward(lora_x_.get(), inp, N, g.in, cfg_.lora.dropout, lora_dropout_seed_, stream);
    be_->zero(lora_dx_.get(), bytes);
    be_->lora_backward(lora_dx_.get(), G + slot[0], G + slot[1], lora_u_.get(), lora_du_.get(), dout + g.offset, lora_x_.get(),
                       P + slot[0], P + slot[1], N, g.in, g.out, g.ld, cfg_.lora.rank, lora_scale_);
    if (dinp) be_->lora_dropout_backward(dinp, lora_dx_.get(), N, g.in, cfg_.lora.dropout, lora_dropout_seed_, stream);
  }
}

Model::Trained Model::trained() {
  if (lora_on()) return Trained{lora_p_.get(), lora_g_.get(), lora_m_.get(), lora_v_.get(), num_lora_, &lora_specs_};
  return Trained{params_.get(), grads_.get(), m_.get(), v_.get(), num_params_, &specs_};
}

}  // namespace revenant
