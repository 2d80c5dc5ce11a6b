// generate() against tokens recorded from the per-token sampling loop it replaced (one host round
// trip per token), for the same seeds: the backend-side loop must draw the same tokens, with the
// same lengths, on the CPU and on CUDA (the emulator). On the emulator also the host waits one
// generate makes: one, the final download, whatever the number of tokens. The record depends on
// the ops' rounding (and the host libm): a change that moves a draw needs a new record, taken
// from a loop that reads each draw back before the next step. In the `generate` section; the
// `cuda` section runs it too.
#include <cstdio>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/device_info.h"
#include "core/model.h"
#include "harness.h"

#ifdef REVENANT_CUDA_SIM
#include "cuda_sim/cuda_sim.h"
#endif

namespace rvtest {
namespace {
using namespace revenant;

struct Case {
  const char* label;
  ModelConfig cfg;
  GenerateOptions opt;
  std::vector<std::vector<int>> prompts;
  std::vector<int> tokens, lengths;  // as the per-token loop drew them (the same on cpu and cuda)
};

std::vector<Case> cases() {
  ModelConfig gpt2;
  gpt2.value_head = true;
  gpt2.seed = 3;
  ModelConfig llama = gpt2;
  llama.arch = Arch::Llama;
  llama.kv_heads = 2;
  llama.intermediate = 96;
  // Uneven prompts (rows that read their prompt while others sample), an end-of-sequence id that
  // stops every row before 12 tokens in the first case (the loop ends early), then top-k/top-p
  // below temperature 1.
  GenerateOptions plain{12, 1.0f, 11, 2};
  GenerateOptions filtered{12, 0.8f, 5, 7, 5, 0.9f};
  return {{"gpt2, temperature 1, eos 2", gpt2, plain, {{1, 2, 3}, {4}, {5, 6, 7, 8, 9}},
           {8, 13, 6, 5, 13, 13, 4, 6, 2, 0, 0, 0, 6, 10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
           {9, 3, 1}},
          {"llama, top-k 5, top-p 0.9, eos 7", llama, filtered, {{3, 1}, {8, 8, 8, 8}, {15}},
           {11, 13, 15, 14, 9, 3, 8, 14, 4, 2, 8, 14, 4, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 4, 15, 4, 15, 8, 14, 15, 4, 15, 14, 9},
           {12, 2, 12}}};
}

std::string join(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

void check_record(const char* backend, std::unique_ptr<Backend> (*make)()) {
  for (const Case& c : cases()) {
    Model m(c.cfg, make());
    const GenerateResult r = m.generate(c.prompts, c.opt);
    check(r.tokens == c.tokens && r.lengths == c.lengths,
          std::string("generate ") + backend + " draws the per-token loop's tokens [" + c.label + "]",
          "tokens {" + join(r.tokens) + "} lengths {" + join(r.lengths) + "}");
  }
}

#ifdef REVENANT_CUDA_SIM
// Host waits of one generate of n new tokens on a model that has generated once already (its
// buffers exist), and of the first one, which allocates them.
void check_host_waits() {
  ModelConfig cfg;
  cfg.value_head = true;
  cfg.seed = 3;
  for (const int n : {1, 4, 16}) {
    Model m(cfg, make_cuda_backend());
    GenerateOptions opt{n, 1.0f, 2};
    const std::vector<std::vector<int>> prompts = {{1, 2, 3}, {4}};
    const long first0 = cuda_sim::host_syncs().waits;
    const GenerateResult a = m.generate(prompts, opt);
    const long first = cuda_sim::host_syncs().waits - first0;
    const long again0 = cuda_sim::host_syncs().waits;
    const GenerateResult b = m.generate(prompts, opt);
    const long again = cuda_sim::host_syncs().waits - again0;
    check(again == 1 && a.tokens == b.tokens, "generate of " + std::to_string(n) + " tokens on cuda: one host wait",
          std::to_string(again) + " waits (" + std::to_string(first) + " on the first call, which allocates)");
  }
}
#endif

}  // namespace

void run_generate_tests() {
  std::printf("== generate against the per-token loop's record\n");
  check_record("cpu", [] { return make_cpu_backend(); });
#ifdef REVENANT_HAVE_CUDA
  if (cuda_status().usable) check_record("cuda", [] { return make_cuda_backend(); });
#endif
#ifdef REVENANT_CUDA_SIM
  check_host_waits();
#endif
}

}  // namespace rvtest
