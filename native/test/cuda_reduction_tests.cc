// The deterministic two-stage reductions of the CUDA backend (LayerNorm/RMSNorm weight and bias
// gradients, the q/k norms' weight, the token and position embedding gradients): each against
// the CPU reference at the ops' tolerance (1e-5 scaled error: float sums in another order), and
// bit-identical from run to run. Under the emulator the second run takes the grid's blocks in the
// reverse order (cuda_sim::set_block_order): a reduction whose result depended on which block ran
// first (a float atomicAdd across blocks, say) would give other bits there. As a supplement, the
// kernels' sources are read and must call no atomic (atomicAdd, atomicCAS...). Part of the `cuda` section.
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_info.h"
#include "backend_copies.h"
#include "harness.h"

#ifdef REVENANT_CUDA_SIM
#include "cuda_sim/cuda_sim.h"
#endif

namespace rvtest {

#ifdef REVENANT_HAVE_CUDA
namespace {
using revenant::Backend;

// The inputs of every reduction, on one backend. N = 4 * 70 rows span 9 slices of 32 rows and two
// 256-row tiles of the embedding's rank kernel (the second partial); 7 token ids make every token's
// rows cross slices; C = 70 leaves a partial block of channels.
struct Fixture {
  static constexpr int B = 4, T = 70, N = B * T, C = 70, V = 7, heads = 3, hd = 10, stride = 35;
  std::vector<float> x, dout, w, mean, rstd, hx, hrstd;
  std::vector<int> tokens;
  explicit Fixture(Rng& r) {
    x = cast<float>(r.normals(N * C, 2.0));
    dout = cast<float>(r.normals(N * C));
    w = cast<float>(r.normals(C));
    hx = cast<float>(r.normals(N * stride));
    for (int n = 0; n < N; ++n) {
      mean.push_back(static_cast<float>(r.normal()));
      rstd.push_back(static_cast<float>(0.5 + r.uniform()));
      tokens.push_back(r.below(V));
    }
    for (int u = 0; u < N * heads; ++u) hrstd.push_back(static_cast<float>(0.5 + r.uniform()));
  }
};

// Every gradient the reductions produce, from zeroed outputs, on one backend, copied to the host.
std::vector<std::vector<float>> reduce_all(Backend& be, const Fixture& f) {
  using F = Fixture;
  float *x = put(be, f.x), *dout = put(be, f.dout), *w = put(be, f.w), *mean = put(be, f.mean),
        *rstd = put(be, f.rstd), *hx = put(be, f.hx), *hrstd = put(be, f.hrstd);
  int* tok = put(be, f.tokens);
  float* dinp = put(be, std::vector<float>(F::N * F::C));
  float *dw = put(be, std::vector<float>(F::C)), *db = put(be, std::vector<float>(F::C));
  float *rdw = put(be, std::vector<float>(F::C)), *hdw = put(be, std::vector<float>(F::hd));
  float* hdx = put(be, std::vector<float>(f.dout.begin(), f.dout.begin() + F::N * F::stride));
  float *dwte = put(be, std::vector<float>(F::V * F::C)), *dwpe = put(be, std::vector<float>((F::T + 3) * F::C));
  be.layernorm_backward(dinp, dw, db, dout, x, w, mean, rstd, F::N, F::C);
  be.rmsnorm_backward(dinp, rdw, dout, x, w, rstd, F::N, F::C);
  be.head_rmsnorm_backward(hdx, hdw, hx, w, hrstd, F::N, F::heads, F::hd, F::stride);
  be.embedding_backward(dwte, dwpe, dout, tok, F::B, F::T, F::C, 3);
  std::vector<std::vector<float>> out = {get(be, dw, F::C),          get(be, db, F::C),
                                         get(be, rdw, F::C),         get(be, hdw, F::hd),
                                         get(be, dwte, F::V * F::C), get(be, dwpe, (F::T + 3) * F::C)};
  for (void* p : {static_cast<void*>(x), static_cast<void*>(dout), static_cast<void*>(w), static_cast<void*>(mean),
                  static_cast<void*>(rstd), static_cast<void*>(hx), static_cast<void*>(hrstd), static_cast<void*>(tok),
                  static_cast<void*>(dinp), static_cast<void*>(dw), static_cast<void*>(db), static_cast<void*>(rdw),
                  static_cast<void*>(hdw), static_cast<void*>(hdx), static_cast<void*>(dwte), static_cast<void*>(dwpe)})
    be.release(p);
  return out;
}

const char* const kNames[] = {"layernorm dw", "layernorm db", "rmsnorm dw", "head_rmsnorm dw", "embedding dwte",
                              "embedding dwpe"};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

#ifdef REVENANT_CUDA_SIM
// The supplement: the reduction kernels' sources add no float with an atomic.
void check_sources_hold_no_atomics() {
  for (const char* file : {"layernorm.cu", "rmsnorm.cu", "head_rmsnorm.cu", "embedding.cu", "slice_sum.cu"}) {
    std::ifstream in(std::string(REVENANT_SOURCE_DIR) + "/native/src/cuda/" + file);
    std::stringstream text;
    text << in.rdbuf();
    const bool read = in.good() || in.eof();
    // A call of any CUDA atomic (atomicAdd, atomicCAS...); the word in a comment does not count.
    static const std::regex call("atomic[A-Z][A-Za-z]*\\s*\\(");
    check(read && !text.str().empty() && !std::regex_search(text.str(), call),
          std::string("deterministic reductions: ") + file + " calls no atomic", read ? "" : "source not readable");
  }
}
#endif

}  // namespace
#endif

void run_cuda_reduction_tests() {
  if (!cuda_section("cuda deterministic reductions").usable) return;
#ifdef REVENANT_HAVE_CUDA
  unit("deterministic reductions", [] {
    Rng r(31);
    const Fixture f(r);
    auto cpu = revenant::make_cpu_backend();
    auto gpu = revenant::make_cuda_backend();
    const auto ref = reduce_all(*cpu, f);
    const auto first = reduce_all(*gpu, f);
#ifdef REVENANT_CUDA_SIM
    cuda_sim::set_block_order(true);
    const char* again = " (second run, blocks in reverse order)";
#else
    const char* again = " (second run)";
#endif
    const auto second = reduce_all(*gpu, f);
#ifdef REVENANT_CUDA_SIM
    cuda_sim::set_block_order(false);
#endif
    for (std::size_t i = 0; i < ref.size(); ++i) {
      check_close(std::string("deterministic reductions: ") + kNames[i] + " cuda vs cpu", scaled_error(first[i], ref[i]), 1e-5);
      check(same_bits(first[i], second[i]), std::string("deterministic reductions: ") + kNames[i] + " bit-identical" + again, "");
    }
  });
#ifdef REVENANT_CUDA_SIM
  check_sources_hold_no_atomics();
#endif
#endif
}

}  // namespace rvtest
