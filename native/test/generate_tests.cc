// generate() against tokens recorded from the per-token sampling loop it replaced (one host round
// trip per token), for the same seeds: the backend-side loop must draw the same tokens, with the
// same lengths, on the CPU and on CUDA (the emulator); the loop ends when every row has drawn its
// end-of-sequence id (steps counted), and on the emulator the host waits one generate makes: one,
// the final download, whatever the number of tokens. The record depends on
// the ops' rounding (and the host libm): a change that moves a draw needs a new record, taken
// from a loop that reads each draw back before the next step. In the `generate` section; the
// `cuda` section runs it too.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
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

// A backend that forwards everything to another and counts the decoding steps (decode_record).
class StepCounter final : public Backend {
 public:
  explicit StepCounter(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  void* alloc(std::size_t n) override { return inner_->alloc(n); }
  void release(void* p) override { inner_->release(p); }
  void upload(void* d, const void* s, std::size_t n) override { inner_->upload(d, s, n); }
  void download(void* d, const void* s, std::size_t n) override { inner_->download(d, s, n); }
  void zero(void* p, std::size_t n) override { inner_->zero(p, n); }
  void copy(void* d, const void* s, std::size_t n) override { inner_->copy(d, s, n); }
  void synchronize() override { inner_->synchronize(); }
  MemoryBudget free_memory() override { return inner_->free_memory(); }
  bool poll(const int* src, int* value) override { return inner_->poll(src, value); }
#define RV_FORWARD_OP(ret, name, params, args) \
  ret name params override {                   \
    note(#name);                               \
    return inner_->name args;                  \
  }
  REVENANT_OPS(RV_FORWARD_OP)
#undef RV_FORWARD_OP
  void note(const char* op) { steps += std::strcmp(op, "decode_record") == 0; }
  int steps = 0;

 private:
  std::unique_ptr<Backend> inner_;
};

// The first case's rows all draw their end-of-sequence id before 12 tokens: the loop ends when the
// last row does, not at the last position a row could reach. The CPU's poll answers at once; the
// emulator's answers one step late (the read asked for after a step arrives by the next poll).
void check_early_end(const char* backend, std::unique_ptr<Backend> inner, int late) {
  const Case c = cases()[0];
  auto counter = std::make_unique<StepCounter>(std::move(inner));
  StepCounter* seen = counter.get();
  Model m(c.cfg, std::move(counter));
  const GenerateResult r = m.generate(c.prompts, c.opt);
  int shortest = 1 << 30, longest = 0, end = 0;
  for (std::size_t b = 0; b < c.prompts.size(); ++b) {
    const int len = static_cast<int>(c.prompts[b].size());
    shortest = std::min(shortest, len);
    longest = std::max(longest, len);
    end = std::max(end, len - 1 + r.lengths[b] - 1);  // the position of the row's last draw
  }
  const int all = longest + c.opt.max_new_tokens - shortest, needed = end - (shortest - 1) + 1;
  check(seen->steps == needed + late && needed < all && r.tokens == c.tokens,
        std::string("generate ") + backend + " ends when every row has drawn its end-of-sequence id",
        std::to_string(seen->steps) + " steps of " + std::to_string(all) + " (every row done after " +
            std::to_string(needed) + ")");
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
  check_early_end("cpu", make_cpu_backend(), 0);
#ifdef REVENANT_HAVE_CUDA
  if (cuda_status().usable) unit("generate record (cuda)", [] { check_record("cuda", [] { return make_cuda_backend(); }); });
#endif
#ifdef REVENANT_CUDA_SIM
  unit("generate early end (cuda)", [] { check_early_end("cuda", make_cuda_backend(), 1); });
  unit("generate host waits", check_host_waits);
#endif
}

}  // namespace rvtest
