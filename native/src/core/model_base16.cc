// Model's bfloat16 frozen base (lora.bf16_base): a LoRA model loaded from a BF16 folder keeps its
// projection matrices (q/k/v/o/gate/up/down, the bulk of the weights) as bfloat16, half the bytes
// of float32. Each block's product widens its matrix into one reused float32 scratch (as big as the
// largest matrix of a layer) right before the product, forward and backward alike, so everything
// computes in float32 exactly as a float32 base holding the same bf16-rounded weights does.
// The token embedding and the LM head (one table when tied) are held as bfloat16 too: the lookup
// widens only the rows it gathers, and the fused LM head widens one vocabulary chunk at a time into
// the same scratch (widened_ is at least chunk * C), so the base stays bfloat16 whole but for its
// norms and biases, and no float32 copy of the vocabulary ever exists.
#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "core/model.h"

namespace revenant {

namespace {

// float32 -> bfloat16, rounding to nearest even (what torch's .to(torch.bfloat16) does); a NaN
// stays a (quiet) NaN. A value already in bfloat16, as a BF16 folder's are, comes back exact.
uint16_t to_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// The pieces of the base's flat range [begin, begin + n), one per tensor it overlaps:
// piece(i, off, at, count) for `count` entries of tensor i, `off` past begin in the flat range and
// `at` in the tensor's home (home[i] onwards).
template <typename F>
void for_each_piece(const std::vector<TensorSpec>& specs, const std::vector<std::size_t>& home, std::size_t begin,
                    std::size_t n, F&& piece) {
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& s = specs[i];
    const std::size_t lo = std::max(begin, s.offset), hi = std::min(begin + n, s.offset + s.size);
    if (lo < hi) piece(i, lo - begin, home[i] + (lo - s.offset), hi - lo);
  }
}

float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

bool is_projection(const std::string& name) {
  const std::string tail = "_proj.weight";
  return name.size() > tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

void Model::build_base16() {
  home_.assign(specs_.size(), 0);
  held16_.assign(specs_.size(), 0);
  std::size_t n32 = 0, n16 = 0;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const std::size_t at = specs_[i].offset;
    held16_[i] = is_projection(specs_[i].name) || at == slots_.wte || at == slots_.lm_head;
    std::size_t& n = held16_[i] ? n16 : n32;
    home_[i] = n;
    n += specs_[i].size;
  }
  // Every slot names the first entry of a spec: a float32 one moves to its compact home, a held
  // matrix's goes to frozen16_ and the slot to kAbsent (a null weight in layer(): see frozen()).
  const auto spec_at = [&](std::size_t offset) {
    for (std::size_t i = 0; i < specs_.size(); ++i)
      if (specs_[i].offset == offset) return i;
    RV_CHECK(false, "model", "internal: no tensor starts at a slot's offset " + std::to_string(offset));
    return std::size_t{0};
  };
  const auto remap = [&](std::size_t& slot) {
    if (slot != kAbsent) slot = home_[spec_at(slot)];
  };
  frozen16_.assign(static_cast<std::size_t>(cfg_.layers) * kFrozenMatrices, kAbsent);
  for (int l = 0; l < cfg_.layers; ++l) {
    LayerSlots& s = layer_slots_[l];
    std::size_t* matrices[kFrozenMatrices] = {&s.qkvw, &s.attprojw, &s.fcw, &s.fcprojw};
    for (int m = 0; m < kFrozenMatrices; ++m) {
      const std::size_t i = spec_at(*matrices[m]);
      RV_CHECK(held16_[i], "model", "internal: " + specs_[i].name + " is not a projection matrix");
      frozen16_[static_cast<std::size_t>(l) * kFrozenMatrices + m] = home_[i];
      *matrices[m] = kAbsent;
    }
    for (std::size_t* slot : {&s.ln1w, &s.ln1b, &s.qkvb, &s.attprojb, &s.ln2w, &s.ln2b, &s.fcb, &s.fcprojb, &s.qnorm, &s.knorm})
      remap(*slot);
  }
  emb16_ = home_[spec_at(slots_.wte)];
  head16_ = home_[spec_at(slots_.lm_head)];
  slots_.wte = slots_.lm_head = kAbsent;
  for (std::size_t* slot : {&slots_.wpe, &slots_.lnfw, &slots_.lnfb, &slots_.vhw, &slots_.vhb}) remap(*slot);
  params_ = DeviceBuffer<float>(be_.get(), n32);
  base16_ = DeviceBuffer<uint16_t>(be_.get(), n16);
  const std::size_t widest = std::max({static_cast<std::size_t>(d_.qkv) * d_.C, static_cast<std::size_t>(d_.C) * d_.qC,
                                       static_cast<std::size_t>(d_.mlp_in) * d_.C, static_cast<std::size_t>(d_.C) * d_.mlp_hidden,
                                       static_cast<std::size_t>(d_.chunk) * d_.C});
  widened_ = DeviceBuffer<float>(be_.get(), widest);
}

const float* Model::frozen(const float* w, int l, FrozenMatrix which) {
  if (w || !base16_on()) return w;
  const std::size_t C = d_.C;
  const std::size_t sizes[kFrozenMatrices] = {d_.qkv * C, C * d_.qC, d_.mlp_in * C, C * d_.mlp_hidden};
  be_->bf16_widen(widened_.get(), base16_.get() + frozen16_[static_cast<std::size_t>(l) * kFrozenMatrices + which], sizes[which]);
  return widened_.get();
}

// A bfloat16 table belongs to a LoRA model, a llama one: no position table, so pos0 plays no part.
void Model::embed(float* out, const int* tokens, int B, int T, int pos0) {
  if (emb16_ != kAbsent) be_->bf16_embedding_forward(out, tokens, base16_.get() + emb16_, B * T, d_.C);
  else be_->embedding_forward(out, tokens, at(params_.get(), slots_.wte), at(params_.get(), slots_.wpe), B, T, d_.C, pos0);
}

void Model::store_base(std::size_t begin, std::size_t n, const float* src) {
  if (!base16_on()) {
    be_->upload(params_.get() + begin, src, n * sizeof(float));
    return;
  }
  std::vector<uint16_t> narrow;
  for_each_piece(specs_, home_, begin, n, [&](std::size_t i, std::size_t off, std::size_t at, std::size_t count) {
    const float* from = src + off;
    if (!held16_[i]) {
      be_->upload(params_.get() + at, from, count * sizeof(float));
      return;
    }
    narrow.resize(count);
    for (std::size_t k = 0; k < count; ++k) narrow[k] = to_bf16(from[k]);
    be_->upload(base16_.get() + at, narrow.data(), count * sizeof(uint16_t));
  });
}

void Model::fetch_base(std::size_t begin, std::size_t n, float* dst) {
  if (!base16_on()) {
    be_->download(dst, params_.get() + begin, n * sizeof(float));
    return;
  }
  std::vector<uint16_t> narrow;
  for_each_piece(specs_, home_, begin, n, [&](std::size_t i, std::size_t off, std::size_t at, std::size_t count) {
    float* to = dst + off;
    if (!held16_[i]) {
      be_->download(to, params_.get() + at, count * sizeof(float));
      return;
    }
    narrow.resize(count);
    be_->download(narrow.data(), base16_.get() + at, count * sizeof(uint16_t));
    for (std::size_t k = 0; k < count; ++k) to[k] = from_bf16(narrow[k]);
  });
}

void Model::copy_base_to(float* dst) { fetch_base(0, num_params_, dst); }

void Model::load_base_from(const float* src) { store_base(0, num_params_, src); }

}  // namespace revenant
