// A training step's scalars on the device: the PPO policy and value losses (policy_loss_forward,
// value_loss_forward) and the gradient's sum of squares (sum_squares_accumulate) against the CPU
// reference, the clipping factor (clip_scale), and, under the emulator, the count of
// device-to-host copies a whole policy_step and value_step make: one (the statistics, the gradient
// norm and the finite-update verdict together), whatever the number of tensors. Part of the `cuda`
// section.
//
// Tolerances: per-token gradients are the same double expression on both, cast to float: 1e-6
// scaled error leaves room for exp's last bit. Statistics are double sums in another order (a
// shared tree against a loop): 1e-12 relative.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_info.h"
#include "core/model.h"
#include "backend_copies.h"
#include "harness.h"
#include "model_helpers.h"

#ifdef REVENANT_CUDA_SIM
#include "cuda_sim/cuda_sim.h"
#endif

namespace rvtest {

#ifdef REVENANT_HAVE_CUDA
namespace {
using revenant::Backend;

double relative(double a, double b) { return std::fabs(a - b) / std::fmax(1e-300, std::fmax(std::fabs(a), std::fabs(b))); }

// The per-token inputs of a loss: weights 0, 0.5 or 1 (the zeros are unscored rows).
struct LossInputs {
  static constexpr int n = 300;
  std::vector<float> lp, ent, weight, adv, old, ref;
  explicit LossInputs(Rng& r) {
    for (int i = 0; i < n; ++i) {
      lp.push_back(static_cast<float>(-2.0 + 0.5 * r.normal()));
      old.push_back(lp.back() + static_cast<float>(0.3 * r.normal()));  // ratios past the clip range both ways
      ref.push_back(lp.back() + static_cast<float>(0.2 * r.normal()));
      ent.push_back(static_cast<float>(1.0 + r.uniform()));
      adv.push_back(static_cast<float>(r.normal()));
      weight.push_back(i % 5 == 0 ? 0.0f : (i % 3 == 0 ? 0.5f : 1.0f));
    }
  }
};

// policy_loss_forward on one backend: dlp, dent and the statistics, on the host.
struct PolicyOut {
  std::vector<float> dlp, dent;
  std::vector<double> stats;
};
PolicyOut policy_on(Backend& be, const LossInputs& x, bool with_ref, const revenant::PolicyLossConfig& cfg) {
  const int n = LossInputs::n;
  float *lp = put(be, x.lp), *ent = put(be, x.ent), *w = put(be, x.weight), *adv = put(be, x.adv), *old = put(be, x.old),
        *ref = put(be, x.ref), *dlp = put(be, std::vector<float>(n)), *dent = put(be, std::vector<float>(n));
  double* stats = put(be, std::vector<double>(revenant::kPolicyStats));
  be.policy_loss_forward(dlp, dent, stats, lp, ent, w, adv, old, with_ref ? ref : nullptr, n, cfg);
  PolicyOut out{get(be, dlp, n), get(be, dent, n), get(be, stats, revenant::kPolicyStats)};
  for (void* p : std::vector<void*>{lp, ent, w, adv, old, ref, dlp, dent, stats}) be.release(p);
  return out;
}

struct ValueOut {
  std::vector<float> dvalues;
  std::vector<double> stats;
};
ValueOut value_on(Backend& be, const LossInputs& x, float clip_range) {
  const int n = LossInputs::n;
  // values: lp; returns: old; old values: ref (any three float arrays of the right spread)
  float *v = put(be, x.lp), *w = put(be, x.weight), *ret = put(be, x.old), *old = put(be, x.ref),
        *dv = put(be, std::vector<float>(n));
  double* stats = put(be, std::vector<double>(revenant::kValueStats));
  be.value_loss_forward(dv, stats, v, w, ret, old, n, clip_range);
  ValueOut out{get(be, dv, n), get(be, stats, revenant::kValueStats)};
  for (void* p : std::vector<void*>{v, w, ret, old, dv, stats}) be.release(p);
  return out;
}

void compare_losses(Backend& c, Backend& g) {
  Rng r(55);
  const LossInputs x(r);
  revenant::PolicyLossConfig cfg;
  cfg.kl_coef = 0.1f;
  cfg.entropy_coef = 0.01f;
  const char* names[] = {"pg_loss", "kl_loss", "entropy", "clip_frac", "approx_kl", "total", "tokens"};
  for (const auto& [with_ref, loss_norm] : {std::pair{true, 0.0f}, std::pair{false, 0.0f}, std::pair{true, 40.0f}}) {
    cfg.loss_norm = loss_norm;
    const std::string tag = std::string(with_ref ? " (ref" : " (no ref") + ", loss_norm " + std::to_string(loss_norm) + ")";
    const PolicyOut a = policy_on(c, x, with_ref, cfg), b = policy_on(g, x, with_ref, cfg);
    check_close("policy_loss_forward dlp cuda vs cpu" + tag, scaled_error(b.dlp, a.dlp), 1e-6);
    check_close("policy_loss_forward dent cuda vs cpu" + tag, scaled_error(b.dent, a.dent), 1e-6);
    double worst = 0;
    std::string which = "";
    for (int i = 0; i < revenant::kPolicyStats; ++i)
      if (relative(a.stats[i], b.stats[i]) >= worst) worst = relative(a.stats[i], b.stats[i]), which = names[i];
    check_close("policy_loss_forward statistics cuda vs cpu" + tag + " (worst: " + which + ")", worst, 1e-12);
    check(a.stats[revenant::kPolicyClipFrac] > 0, "policy_loss_forward fixture clips some tokens" + tag, "");
  }
  for (const float clip : {0.0f, 0.2f}) {
    const std::string tag = " (clip range " + std::to_string(clip) + ")";
    const ValueOut a = value_on(c, x, clip), b = value_on(g, x, clip);
    check_close("value_loss_forward dvalues cuda vs cpu" + tag, scaled_error(b.dvalues, a.dvalues), 1e-6);
    double worst = 0;
    for (int i = 0; i < revenant::kValueStats; ++i) worst = std::fmax(worst, relative(a.stats[i], b.stats[i]));
    check_close("value_loss_forward statistics cuda vs cpu" + tag, worst, 1e-12);
  }
}

// Three tensors' squares into one device double, read once.
void compare_sum_squares(Backend& c, Backend& g) {
  Rng r(56);
  std::vector<std::vector<float>> xs = {cast<float>(r.normals(5000)), cast<float>(r.normals(17)), cast<float>(r.normals(70001))};
  double total[2] = {0, 0};
  int k = 0;
  for (Backend* be : {&c, &g}) {
    double* acc = put(*be, std::vector<double>(1));
    std::vector<float*> ps;
    for (const auto& x : xs) ps.push_back(put(*be, x));
    for (std::size_t i = 0; i < xs.size(); ++i) be->sum_squares_accumulate(acc, ps[i], xs[i].size());
    total[k++] = get(*be, acc, 1)[0];
    for (float* p : ps) be->release(p);
    be->release(acc);
  }
  check_close("sum_squares_accumulate of 3 tensors cuda vs cpu", relative(total[0], total[1]), 1e-12);
  // The clipping factor from a sum of squares, above, at and below max_norm^2 and with clipping off:
  // the same double expression on both, so the same float.
  for (const auto& [sumsq, max_norm] : {std::pair{50.0, 2.0f}, std::pair{4.0, 2.0f}, std::pair{1.0, 2.0f}, std::pair{50.0, 0.0f}}) {
    float got[2] = {0, 0};
    int b = 0;
    for (Backend* be : {&c, &g}) {
      double* sq = put(*be, std::vector<double>{sumsq});
      float* scale = put(*be, std::vector<float>{-1.0f});
      be->clip_scale(scale, sq, max_norm);
      got[b++] = get(*be, scale, 1)[0];
      be->release(sq);
      be->release(scale);
    }
    const double want = max_norm > 0 && std::sqrt(sumsq) > max_norm ? max_norm / (std::sqrt(sumsq) + 1e-6) : 1.0;
    check(got[0] == got[1] && got[0] == static_cast<float>(want),
          "clip_scale cuda vs cpu (sum of squares " + std::to_string(sumsq) + ", max norm " + std::to_string(max_norm) + ")",
          std::to_string(got[0]) + " and " + std::to_string(got[1]));
  }
}

// A policy step and a value step of a model on both backends: the same statistics, and on the
// emulator one device-to-host copy per step. On the fp32 kernels, so that the 1e-4 tolerance
// measures the loss and its reductions (the bf16 products of the fast path are checked, at their
// own tolerance, by the whole-model comparison in cuda_tests.cc).
void compare_steps() {
  using namespace revenant;
  ModelConfig cfg;
  cfg.value_head = true;
  cfg.seed = 9;
  Model mc(cfg, make_cpu_backend()), mg(cfg, make_cuda_backend(0, false));
  Rng r(57);
  PolicyBatch pb;
  fill_tokens(pb, 3, 12, cfg.vocab, 0, r);
  pb.old_logprobs = mc.logprobs(pb);
  for (auto& o : pb.old_logprobs) o += static_cast<float>(0.3 * r.normal());
  pb.ref_logprobs = pb.old_logprobs;
  fill_advantages(pb, r);
  PolicyLossConfig loss;
  loss.kl_coef = 0.05f;
  loss.entropy_coef = 0.01f;
  const PolicyStats sc = mc.policy_step(pb, loss, OptimConfig{});
#ifdef REVENANT_CUDA_SIM
  const long before = cuda_sim::host_syncs().device_to_host;
#endif
  const PolicyStats sg = mg.policy_step(pb, loss, OptimConfig{});
#ifdef REVENANT_CUDA_SIM
  const long copies = cuda_sim::host_syncs().device_to_host - before;
  check(copies == 1, "policy_step copies its scalars to the host once (statistics, norm, finite-update verdict)",
        std::to_string(copies) + " device-to-host copies");
#endif
  const double loss_err = std::fmax(relative(sc.loss, sg.loss), std::fmax(relative(sc.pg_loss, sg.pg_loss), relative(sc.approx_kl, sg.approx_kl)));
  check_close("policy_step loss, pg_loss, approx_kl on the device cuda vs cpu", loss_err, 1e-4);
  check_close("policy_step clip_frac cuda vs cpu", std::fabs(sc.clip_frac - sg.clip_frac), 1e-9);
  ValueBatch vb;
  static_cast<TokenBatch&>(vb) = pb;
  vb.returns.resize(pb.tokens.size());
  for (auto& x : vb.returns) x = static_cast<float>(r.normal());
  vb.old_values = mc.values(vb);
  const ValueStats vc = mc.value_step(vb, 0.2f, OptimConfig{});
#ifdef REVENANT_CUDA_SIM
  const long vbefore = cuda_sim::host_syncs().device_to_host;
#endif
  const ValueStats vg = mg.value_step(vb, 0.2f, OptimConfig{});
#ifdef REVENANT_CUDA_SIM
  const long vcopies = cuda_sim::host_syncs().device_to_host - vbefore;
  check(vcopies == 1, "value_step copies its scalars to the host once", std::to_string(vcopies) + " device-to-host copies");
#endif
  check_close("value_step vf_loss and grad norm cuda vs cpu",
              std::fmax(relative(vc.vf_loss, vg.vf_loss), relative(vc.grad_norm, vg.grad_norm)), 1e-4);
}

}  // namespace
#endif

void run_cuda_step_tests() {
  if (!cuda_section("cuda step scalars on the device").usable) return;
#ifdef REVENANT_HAVE_CUDA
  auto cpu = revenant::make_cpu_backend();
  auto gpu = revenant::make_cuda_backend();
  unit("ppo losses on the device", [&] { compare_losses(*cpu, *gpu); });
  unit("sum of squares on the device", [&] { compare_sum_squares(*cpu, *gpu); });
  unit("update steps on the device", compare_steps);
#endif
}

}  // namespace rvtest
