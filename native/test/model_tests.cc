// Whole-model tests on the CPU backend: gradient check of the PPO policy and value losses through
// every layer against finite differences, KV-cache generation against a full forward pass,
// sampling reproducibility, and state round trips.
#include <algorithm>
#include <cmath>

#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"
#include "harness.h"

namespace rvtest {
using namespace revenant;

namespace {

ModelConfig tiny_config() {
  ModelConfig c;
  c.vocab = 7;
  c.context = 6;
  c.width = 8;
  c.layers = 2;
  c.heads = 2;
  c.value_head = true;
  c.seed = 11;
  return c;
}

template <typename Batch>
void fill_tokens(Batch& b, int B, int T, int V, Rng& rng) {
  b.B = B;
  b.T = T;
  b.tokens.resize(B * T);
  b.mask.assign(B * T, 0.0f);
  for (auto& t : b.tokens) t = rng.below(V);
  for (int i = 0; i < B; ++i)
    for (int t = 2; t < T; ++t) b.mask[i * T + t] = 1.0f;  // the "response" part
}

// Picks the parameters to probe: in each tensor, its largest-gradient entry and one random entry.
std::vector<std::size_t> probe_indices(const Model& m, const std::vector<float>& g, Rng& rng) {
  std::vector<std::size_t> idx;
  for (const TensorSpec& s : m.tensors()) {
    std::size_t best = s.offset;
    for (std::size_t i = s.offset; i < s.offset + s.size; ++i)
      if (std::fabs(g[i]) > std::fabs(g[best])) best = i;
    idx.push_back(best);
    idx.push_back(s.offset + rng.below(static_cast<int>(s.size)));
  }
  return idx;
}

// Central differences in float32 on the whole model with h = 1e-2. The loss is O(1) and its
// float32 evaluation carries ~1e-6 absolute noise, so the difference quotient has ~1e-4 noise;
// curvature over h adds ~1e-4 * |g''| more. Accept |fd - g| <= 1e-3 + 2e-2 |g|.
template <typename LossFn>
void model_grad_check(const std::string& name, Model& m, LossFn loss, Rng& rng) {
  loss();
  const std::vector<float> g = m.gradients();
  ModelState st = m.get_state();
  const std::vector<float> base = st.params;
  int bad = 0, probed = 0;
  double worst = 0;
  for (std::size_t i : probe_indices(m, g, rng)) {
    const float h = 1e-2f;
    st.params = base;
    st.params[i] = base[i] + h;
    m.set_state(st);
    const double up = loss();
    st.params[i] = base[i] - h;
    m.set_state(st);
    const double down = loss();
    const double fd = (up - down) / (2.0 * h);
    const double err = std::fabs(fd - g[i]);
    worst = std::max(worst, err / (1e-3 + 2e-2 * std::fabs(g[i])));
    if (err > 1e-3 + 2e-2 * std::fabs(g[i])) {
      ++bad;
      std::printf("     param %zu: analytic %.6g, finite difference %.6g\n", i, g[i], fd);
    }
    ++probed;
  }
  st.params = base;
  m.set_state(st);
  check(bad == 0, name, std::to_string(probed) + " parameters probed, worst error/tolerance " + std::to_string(worst));
}

void whole_model_gradients() {
  Rng rng(21);
  const ModelConfig cfg = tiny_config();
  Model m(cfg, make_cpu_backend());
  PolicyBatch pb;
  fill_tokens(pb, 3, cfg.context, cfg.vocab, rng);
  const std::vector<float> lp = m.logprobs(pb);
  pb.advantages.resize(lp.size());
  pb.old_logprobs.resize(lp.size());
  pb.ref_logprobs.resize(lp.size());
  for (std::size_t i = 0; i < lp.size(); ++i) {
    pb.advantages[i] = static_cast<float>(rng.normal());
    // Ratios within 0.95..1.05: inside the clip range, away from the loss's kinks.
    pb.old_logprobs[i] = lp[i] + static_cast<float>(0.05 * (rng.uniform() - 0.5));
    pb.ref_logprobs[i] = lp[i] + static_cast<float>(0.3 * rng.normal());
  }
  PolicyLossConfig lc;
  lc.clip_ratio = 0.2f;
  lc.kl_coef = 0.5f;
  lc.entropy_coef = 0.1f;
  model_grad_check("whole-model gradient: PPO loss (clip, KL, entropy)", m,
                   [&] { return m.policy_gradients(pb, lc).loss; }, rng);

  ValueBatch vb;
  fill_tokens(vb, 3, cfg.context, cfg.vocab, rng);
  vb.returns.resize(vb.tokens.size());
  vb.old_values.assign(vb.tokens.size(), 0.0f);
  for (auto& r : vb.returns) r = static_cast<float>(rng.normal());
  model_grad_check("whole-model gradient: value loss", m, [&] { return m.value_gradients(vb, 0.0f).vf_loss; }, rng);
}

void generation_checks() {
  Rng rng(3);
  ModelConfig cfg = tiny_config();
  cfg.context = 16;
  Model m(cfg, make_cpu_backend());
  const std::vector<std::vector<int>> prompts = {{1, 2, 3}, {4}, {5, 6}};
  GenerateOptions opt;
  opt.max_new_tokens = 6;
  opt.seed = 99;
  const GenerateResult a = m.generate(prompts, opt);
  const GenerateResult b = m.generate(prompts, opt);
  check(a.tokens == b.tokens && a.logprobs == b.logprobs && a.values == b.values,
        "generate: same seed, bit-identical tokens, logprobs and values", "");
  opt.seed = 100;
  check(m.generate(prompts, opt).tokens != a.tokens, "generate: another seed, other tokens", "");

  // Cached decoding must agree with a full forward pass over the finished sequences.
  double err = 0, verr = 0;
  for (std::size_t r = 0; r < prompts.size(); ++r) {
    TokenBatch tb;
    tb.B = 1;
    tb.tokens = prompts[r];
    for (int i = 0; i < a.lengths[r]; ++i) tb.tokens.push_back(a.tokens[r * opt.max_new_tokens + i]);
    tb.T = static_cast<int>(tb.tokens.size());
    tb.mask.assign(tb.T, 0.0f);
    for (int t = static_cast<int>(prompts[r].size()); t < tb.T; ++t) tb.mask[t] = 1.0f;
    const std::vector<float> lp = m.logprobs(tb), v = m.values(tb);
    for (int i = 0; i < a.lengths[r]; ++i) {
      const int t = static_cast<int>(prompts[r].size()) + i;
      err = std::max(err, double(std::fabs(lp[t] - a.logprobs[r * opt.max_new_tokens + i])));
      verr = std::max(verr, double(std::fabs(v[t] - a.values[r * opt.max_new_tokens + i])));
    }
  }
  // Same ops, different matrix shapes (B rows vs B*T rows): float32 rounding may differ slightly.
  check_close("generate: cached logprobs match logprobs()", err, 1e-5);
  check_close("generate: cached values match values()", verr, 1e-5);

  opt.eos_token = a.tokens[0];
  const GenerateResult e = m.generate(prompts, GenerateOptions{6, 1.0f, 99, a.tokens[0]});
  check(e.lengths[0] == 1, "generate: a row stops at its end-of-sequence token", "");
  bool threw = false;
  try {
    m.generate({{1, 2, 99}}, opt);
  } catch (const Error& ex) {
    threw = std::string(ex.what()).find("99") != std::string::npos;
  }
  check(threw, "generate: out-of-range token id throws an error naming it", "");
}

void state_checks() {
  Rng rng(8);
  const ModelConfig cfg = tiny_config();
  Model a(cfg, make_cpu_backend()), b(cfg, make_cpu_backend());
  check(a.num_params() == count_params(cfg), "parameter layout matches count_params()",
        std::to_string(a.num_params()) + " parameters");
  PolicyBatch pb;
  fill_tokens(pb, 2, cfg.context, cfg.vocab, rng);
  pb.advantages.assign(pb.tokens.size(), 1.0f);
  pb.old_logprobs = a.logprobs(pb);
  OptimConfig oc;
  for (int i = 0; i < 2; ++i) a.policy_step(pb, PolicyLossConfig{}, oc);
  b.set_state(a.get_state());
  const ModelState sa = a.get_state(), sb = b.get_state();
  check(sa.params == sb.params && sa.adam_m == sb.adam_m && sa.adam_v == sb.adam_v && sa.step == sb.step,
        "setState(getState()) round-trips bit-exactly", "");
  for (int i = 0; i < 3; ++i) {
    a.policy_step(pb, PolicyLossConfig{}, oc);
    b.policy_step(pb, PolicyLossConfig{}, oc);
  }
  check(a.get_state().params == b.get_state().params, "restored model trains to the same weights", "");
}

}  // namespace

void run_model_tests() {
  std::printf("== model (cpu)\n");
  whole_model_gradients();
  generation_checks();
  state_checks();
}

}  // namespace rvtest
