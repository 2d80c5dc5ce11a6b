// What the model refuses, and that a refusal changes nothing: bad optimizer settings, negative or
// non-finite mask entries, a batch with no scored token, an update that would leave a weight or a
// moment non-finite, and a batch shape too large for the memory or for int-indexed ops. The size
// arithmetic is checked past 2^31 with pure functions, so nothing that large is allocated.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/launch.h"
#include "core/memory.h"
#include "core/model.h"
#include "cpu/ops.h"
#include "harness.h"
#include "model_helpers.h"

namespace rvtest {
using namespace revenant;

namespace {

ModelConfig small_config() {
  ModelConfig c = tiny_config();
  c.seed = 3;
  return c;
}

PolicyBatch policy_batch(Model& m, int B, int T, Rng& rng) {
  PolicyBatch b;
  fill_tokens(b, B, T, m.config().vocab, 1, rng);
  b.advantages.assign(b.tokens.size(), 1.0f);
  b.old_logprobs = m.logprobs(b);
  return b;
}

// Runs f and returns the message of the revenant::Error it throws ("" when it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool same_state(const ModelState& a, const ModelState& b) {
  return a.params == b.params && a.adam_m == b.adam_m && a.adam_v == b.adam_v && a.step == b.step;
}

void optimizer_refusals() {
  Rng rng(21);
  Model m(small_config(), make_cpu_backend());
  const PolicyBatch b = policy_batch(m, 2, 6, rng);
  const ModelState before = m.get_state();
  OptimConfig zero_eps;
  zero_eps.eps = 0;
  const std::string e = error_of([&] { m.policy_step(b, PolicyLossConfig{}, zero_eps); });
  check(has(e, "policyStep: eps must be a finite number > 0") && same_state(before, m.get_state()),
        "AdamW eps 0 is refused by name and changes nothing", e);
  OptimConfig beta;
  beta.beta2 = 1.0f;
  check(has(error_of([&] { m.policy_step(b, PolicyLossConfig{}, beta); }), "beta2 must be in [0, 1), got 1"),
        "AdamW beta2 1 is refused by name", "");
  OptimConfig decay;
  decay.weight_decay = -1;
  check(has(error_of([&] { m.policy_step(b, PolicyLossConfig{}, decay); }), "weightDecay must be a finite number >= 0"),
        "negative weight decay is refused by name", "");
}

void mask_refusals() {
  Rng rng(22);
  Model m(small_config(), make_cpu_backend());
  PolicyBatch b = policy_batch(m, 2, 6, rng);
  PolicyBatch negative = b;
  negative.mask[3] = -1.0f;
  check(has(error_of([&] { m.logprobs(negative); }), "mask[3] is -1"), "a negative mask entry is refused by index", "");
  PolicyBatch nan = b;
  nan.mask[4] = NAN;
  check(has(error_of([&] { m.policy_step(nan, PolicyLossConfig{}, OptimConfig{}); }), "mask[4] is nan"),
        "a NaN mask entry is refused by index", "");
  // Only position 0 set: it is never scored, so the batch has nothing to learn from.
  PolicyBatch unscored = b;
  std::fill(unscored.mask.begin(), unscored.mask.end(), 0.0f);
  unscored.mask[0] = 1.0f;
  const ModelState before = m.get_state();
  check(has(error_of([&] { m.policy_step(unscored, PolicyLossConfig{}, OptimConfig{}); }),
            "policyStep: mask is 0 at every scored position") && same_state(before, m.get_state()),
        "policyStep refuses a batch with no scored token", "");
  ValueBatch vb;
  static_cast<TokenBatch&>(vb) = unscored;
  vb.returns.assign(vb.tokens.size(), 0.0f);
  vb.old_values.assign(vb.tokens.size(), 0.0f);
  check(has(error_of([&] { m.value_step(vb, 0.2f, OptimConfig{}); }), "valueStep: mask is 0 at every scored position"),
        "valueStep refuses a batch with no scored token", "");
}

// Advantages of 1e30 with clipping off give gradients near 1e29: finite, and so is the loss, but
// their squares overflow float, so the second moment would become infinite.
void non_finite_update_refusal() {
  Rng rng(23);
  Model m(small_config(), make_cpu_backend());
  PolicyBatch b = policy_batch(m, 2, 6, rng);
  m.policy_step(b, PolicyLossConfig{}, OptimConfig{});  // a normal step first: moments are non-zero
  const ModelState before = m.get_state();
  for (float& a : b.advantages) a = 1e30f;
  OptimConfig unclipped;
  unclipped.max_grad_norm = 0;
  const std::string e = error_of([&] { m.policy_step(b, PolicyLossConfig{}, unclipped); });
  check(has(e, "NaN or infinite") && has(e, "weights, moments and step left unchanged"),
        "an update that would make a moment infinite is refused", e);
  check(same_state(before, m.get_state()), "a refused update leaves weights, moments and step untouched",
        "step " + std::to_string(m.step()));
}

// Past 2^31 elements the counts must come out exact (64-bit arithmetic); ops index with int, so
// such a shape is refused by its numbers before anything is allocated.
void size_arithmetic() {
  ModelConfig c = resolve_config(small_config());
  c.width = 4096;
  c.heads = 32;
  c.kv_heads = 32;
  c.head_dim = 4096 / 32;
  c.intermediate = 4 * 4096;
  c.vocab = 32000;
  c.valid_vocab = 32000;
  c.context = 4096;
  c.layers = 2;
  const std::size_t B = 64, T = 4096, BT = B * T;
  const ShapeCost cost = activation_cost(c, B, T);
  const std::size_t att = B * 32 * T * T;  // 2^35: the saved softmax
  check(cost.largest == att && cost.largest > (std::size_t{1} << 31),
        "activation_cost: the largest tensor past 2^31 elements is exact", std::to_string(cost.largest));
  const std::size_t per_layer = BT * (7 * 4096 + 4 + 3 * 4096 + 4 * 4096 + 4 * 4096) + att;
  // No [B*T, vocab] logits: the fused LM head's scratch holds one chunk of 2048 ids (plus 2) per row;
  // the loss's 4 per-row inputs (weight, advantages, old and reference log-probs) live beside it.
  const std::size_t global = BT * (2 * 4096 + 2 + 4 + 4) + BT * (2048 + 2) + BT * (4 * 4096 + 3 * 4096 + 8 * 4096 + 3);
  check(cost.bytes == (2 * per_layer + global) * 4 + 2 * BT * 4, "activation_cost: bytes past 2^31 are exact",
        std::to_string(cost.bytes));
  const ShapeCost gen = generate_cost(c, 1 << 16, 1, 4096);
  check(gen.largest == (std::size_t{1} << 16) * 4096 * 4096 * 2, "generate_cost: the KV cache past 2^31 is exact",
        std::to_string(gen.largest));

  // chunk_range over 3e9 items: contiguous, complete, sizes within one.
  const std::size_t n = 3000000000ull;
  bool ok = cpu::chunk_range(n, 7, 0).begin == 0 && cpu::chunk_range(n, 7, 6).end == n;
  for (int p = 0; p + 1 < 7; ++p) ok &= cpu::chunk_range(n, 7, p).end == cpu::chunk_range(n, 7, p + 1).begin;
  const cpu::Range first = cpu::chunk_range(n, 7, 0), last = cpu::chunk_range(n, 7, 6);
  ok &= (first.end - first.begin) - (last.end - last.begin) <= 1;
  check(ok, "chunk_range splits 3e9 items (AdamW's 64-bit loop) exactly", "");

  // CUDA's GEMM puts row tiles on grid.y (at most 65535 blocks): rows near 2^31 run in slices.
  const int64_t rows = (int64_t{1} << 31) - 1;
  const std::vector<RowSlice> slices = grid_row_slices(rows, 16);
  bool covered = !slices.empty() && slices.front().begin == 0;
  for (std::size_t i = 0; i < slices.size(); ++i) {
    covered &= slices[i].rows >= 1 && slices[i].rows <= kMaxGridY * 16;
    covered &= i + 1 < slices.size() ? slices[i].begin + slices[i].rows == slices[i + 1].begin
                                     : slices[i].begin + slices[i].rows == rows;
  }
  check(covered && slices.size() == 2049 && grid_row_slices(kMaxGridY * 16, 16).size() == 1,
        "grid_row_slices covers 2^31 - 1 rows in slices within CUDA's grid.y limit", std::to_string(slices.size()));

  // A real model, a shape whose attention buffer would pass 2^31 elements: refused on the numbers
  // alone (the token arrays are not even looked at, so none are made).
  Model m(small_config(), make_cpu_backend());
  TokenBatch huge;
  huge.B = 1 << 26;
  huge.T = 6;
  const std::string e = error_of([&] { m.logprobs(huge); });
  check(has(e, "batch [B=67108864, T=6] is too large for this model") && has(e, "more than 2^31 - 1"),
        "a batch whose tensors pass 2^31 elements is refused, naming B and T", e);
}

void memory_refusal() {
  Model m(small_config(), make_cpu_backend());
  Rng rng(24);
  const PolicyBatch b = policy_batch(m, 2, 6, rng);  // fits; allocated now
  ::setenv("REVENANT_MEMORY_LIMIT", "100000", 1);
  TokenBatch bigger;
  bigger.B = 64;
  bigger.T = 6;
  const std::string e = error_of([&] { m.logprobs(bigger); });
  const std::string need = std::to_string(activation_cost(m.config(), 64, 6).bytes);
  check(has(e, "batch [B=64, T=6] needs about " + need + " bytes") && has(e, "REVENANT_MEMORY_LIMIT"),
        "a batch over the memory limit is refused, naming B, T and the bytes", e);
  const std::string again = error_of([&] { m.logprobs(b); });  // the allocated shape still runs
  check(again.empty(), "the shape already allocated still runs under the limit", again);
  GenerateOptions two;
  two.max_new_tokens = 2;
  const std::string gen = error_of([&] { m.generate(std::vector<std::vector<int>>(4096, {1}), two); });
  check(has(gen, "4096 prompts needs about"), "generate refuses prompts whose KV cache would not fit", gen);
  ::setenv("REVENANT_MEMORY_LIMIT", "lots", 1);
  check(has(error_of([&] { m.logprobs(bigger); }), "REVENANT_MEMORY_LIMIT must be a byte count, got \"lots\""),
        "an unreadable REVENANT_MEMORY_LIMIT is an error naming it", "");
  ::unsetenv("REVENANT_MEMORY_LIMIT");
  std::size_t v = 0;
  check(parse_bytes("4294967296", &v) && v == (std::size_t{1} << 32) && !parse_bytes("-1", &v) && !parse_bytes("1e9", &v),
        "parse_bytes reads byte counts past 2^32 and nothing else", "");
  check(host_memory_available().bytes > 0, "host memory available is detected",
        host_memory_available().source + ": " + std::to_string(host_memory_available().bytes));
}

}  // namespace

void run_refusal_tests() {
  std::printf("== refusals (cpu)\n");
  optimizer_refusals();
  mask_refusals();
  non_finite_update_refusal();
  size_arithmetic();
  memory_refusal();
}

}  // namespace rvtest
