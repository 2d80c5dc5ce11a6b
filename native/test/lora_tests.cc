// LoRA model tests on the CPU: a fresh adapter computes exactly the base; the adapters' gradients
// through the whole model against central differences; the base stays frozen and scores the
// reference policy with the adapters off; cached generation includes the adapters; the state (the
// adapters and their moments) round-trips and resumes bit-exactly; a bfloat16 base computes what a
// float32 base of the same rounded weights computes, in half the bytes; bad settings are refused.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/model.h"
#include "harness.h"
#include "model_helpers.h"

namespace rvtest {
using namespace revenant;

namespace {

// The model tests' grouped-query llama with q/k/v biases (no value head: LoRA trains policies), and
// Qwen3's q/k norms with a head size of its own (so q_proj's and o_proj's adapters are not square
// and the packed q|k|v blocks have three widths).
ModelConfig lora_llama(int rank, bool qwen3) {
  ModelConfig c = tiny_llama_gqa_bias();
  c.value_head = false;
  c.attention_bias = !qwen3;
  c.qk_norm = qwen3;
  c.head_dim = qwen3 ? 6 : 0;
  c.seed = 31;
  c.lora.rank = rank;
  c.lora.alpha = 3.0f;
  return c;
}

// Adapters with B drawn at random too (a fresh B is 0, whose A gradient is 0: nothing to check).
void randomise_adapters(Model& m, Rng& rng) {
  ModelState s = m.get_state();
  for (auto& p : s.params) p = static_cast<float>(0.3 * rng.normal());
  m.set_state(s);
}

std::vector<float> base_of(Model& m) {
  std::vector<float> b(m.num_params());
  m.copy_base_to(b.data());
  return b;
}

void fresh_adapters_are_the_base(const std::string& label, const ModelConfig& cfg) {
  Rng rng(3);
  ModelConfig plain = cfg;
  plain.lora = LoraConfig{};
  Model base(plain, make_cpu_backend()), lora(cfg, make_cpu_backend());
  const PolicyBatch pb = ppo_batch(base, 3, rng);
  // B = 0 adds scale * 0 = +0.0 to every projection, which leaves each float as it was.
  check(base.logprobs(pb) == lora.logprobs(pb), "lora: fresh adapters (B = 0) give the base's log-probs bit for bit" + label, "");
  const std::vector<float> init = lora.initial_lora_params();
  bool a_ok = true, b_zero = true;
  for (const TensorSpec& s : lora.lora_tensors()) {
    const bool is_a = s.name.find("lora_A") != std::string::npos;
    const double bound = 1.0 / std::sqrt(static_cast<double>(s.shape[1]));
    double largest = 0;
    for (std::size_t i = s.offset; i < s.offset + s.size; ++i) largest = std::max(largest, double(std::fabs(init[i])));
    if (is_a) a_ok &= largest > 0 && largest <= bound;  // Kaiming-uniform: U(-1/sqrt(in), 1/sqrt(in))
    else b_zero &= largest == 0;
  }
  check(a_ok && b_zero, "lora: A starts Kaiming-uniform within 1/sqrt(in), B at zero" + label, "");
  check(lora.num_trained() == lora.num_lora_params() && lora.get_state().params.size() == lora.num_lora_params(),
        "lora: the state holds the adapters alone" + label, std::to_string(lora.num_lora_params()) + " adapter floats");
}

// Central differences in float32 on the adapters, with the whole-model check's step for Llama.
void adapter_gradients(const std::string& label, const ModelConfig& cfg) {
  Rng rng(21);
  Model m(cfg, make_cpu_backend());
  randomise_adapters(m, rng);
  const PolicyBatch pb = ppo_batch(m, 3, rng);
  PolicyLossConfig lc;
  lc.kl_coef = 0.5f;
  lc.entropy_coef = 0.1f;
  grad_check("lora: adapter gradients of the PPO loss match central differences" + label, m, m.lora_tensors(),
             [&] { return m.policy_gradients(pb, lc).loss; }, rng, 2.5e-3f);
}

void training_keeps_the_base(const std::string& label, const ModelConfig& cfg) {
  Rng rng(5);
  ModelConfig plain = cfg;
  plain.lora = LoraConfig{};
  Model base(plain, make_cpu_backend()), m(cfg, make_cpu_backend());
  PolicyBatch pb = ppo_batch(m, 2, rng);
  const std::vector<float> before = base_of(m), base_lp = base.logprobs(pb);
  OptimConfig oc;
  oc.lr = 1e-2f;
  oc.weight_decay = 0.1f;
  for (int i = 0; i < 3; ++i) m.policy_step(pb, PolicyLossConfig{}, oc);
  check(base_of(m) == before, "lora: policy steps leave every base weight as it was" + label, "");
  check(m.logprobs(pb) != base_lp, "lora: policy steps move the adapters' log-probs" + label, "");
  check(m.logprobs(pb, false) == base_lp, "lora: adapters off give the base model's log-probs bit for bit (the reference)" + label, "");

  // Cached decoding includes the adapters: generate's log-probs equal logprobs() of its output.
  const std::vector<std::vector<int>> prompts = {{1, 2}, {3}};
  GenerateOptions opt;
  opt.max_new_tokens = 3;
  opt.seed = 7;
  const GenerateResult r = m.generate(prompts, opt);
  double err = 0;
  for (std::size_t row = 0; row < prompts.size(); ++row) {
    const std::vector<float> lp = m.logprobs(rvtest::finished_row(prompts[row], r, row));
    for (int i = 0; i < r.lengths[row]; ++i)
      err = std::max(err, double(std::fabs(lp[prompts[row].size() + i] - r.logprobs[row * opt.max_new_tokens + i])));
  }
  // Same ops on other row counts (the cache's B rows vs B*T): float32 rounding may differ slightly.
  check_close("lora: cached generation's log-probs include the adapters (match logprobs())" + label, err, 1e-5);

  // Resume: a second model given the state (adapters, moments, step) and the same base trains to the same bits.
  Model b(cfg, make_cpu_backend());
  b.load_base_from(before.data());
  b.set_state(m.get_state());
  for (int i = 0; i < 2; ++i) {
    m.policy_step(pb, PolicyLossConfig{}, oc);
    b.policy_step(pb, PolicyLossConfig{}, oc);
  }
  const ModelState sa = m.get_state(), sb = b.get_state();
  check(sa.params == sb.params && sa.adam_m == sb.adam_m && sa.adam_v == sb.adam_v && sa.step == sb.step,
        "lora: a model restored from the adapter state trains to the same bits" + label, "");
}

// LoRA dropout: the step's loss and gradient are a function of its seed (checked by central
// differences at a fixed seed in run_lora_tests); scoring and sampling never drop anything.
void dropout_checks() {
  Rng rng(9);
  ModelConfig cfg = lora_llama(2, false);
  cfg.lora.dropout = 0.3f;
  Model m(cfg, make_cpu_backend());
  randomise_adapters(m, rng);
  PolicyBatch pb = ppo_batch(m, 2, rng);
  ModelConfig plain = cfg;
  plain.lora.dropout = 0.0f;
  Model nodrop(plain, make_cpu_backend());
  nodrop.set_state(m.get_state());
  check(m.logprobs(pb) == nodrop.logprobs(pb), "lora dropout: log-probs (scoring) drop nothing", "");
  PolicyLossConfig lc;
  pb.dropout_seed = 5;
  const double a = m.policy_gradients(pb, lc).loss;
  const std::vector<float> ga = m.gradients();
  const double again = m.policy_gradients(pb, lc).loss;
  check(a == again && ga == m.gradients(), "lora dropout: the same seed gives the same loss and gradient", "");
  pb.dropout_seed = 6;
  const double b = m.policy_gradients(pb, lc).loss;
  check(b != a && m.gradients() != ga, "lora dropout: another seed, another mask (loss and gradient)", "");
  const double plain_loss = nodrop.policy_gradients(pb, lc).loss;
  check(plain_loss != a, "lora dropout: a step with dropout is not the step without", "");
}

// x rounded to bfloat16 (nearest even), back in float32: what torch's x.to(torch.bfloat16).float() gives.
float bf16_rounded(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// lora.bf16_base: the projection matrices, the token embedding and the LM head held as bfloat16
// must give exactly what a float32 base of the same rounded weights gives (every product reads the
// widened matrix or vocabulary chunk, every lookup the widened rows: the same float32 values), in
// log-probs, gradients, updates and cached generation; the base then takes 2 bytes per such weight
// instead of 4.
void bf16_base_matches_rounded_float32(const std::string& label, ModelConfig cfg) {
  Rng rng(17);
  Model wide(cfg, make_cpu_backend());
  cfg.lora.bf16_base = true;
  Model narrow(cfg, make_cpu_backend());
  std::vector<float> w(wide.num_params()), rounded(w.size());
  for (std::size_t i = 0; i < w.size(); ++i) {
    w[i] = static_cast<float>(0.3 * rng.normal());
    rounded[i] = bf16_rounded(w[i]);
  }
  std::size_t matrices = 0;  // the projection weights, the embedding and the head, held as bfloat16
  std::vector<float> expect = w;
  for (const TensorSpec& s : wide.tensors()) {
    const bool projection = s.name.size() > 12 && s.name.compare(s.name.size() - 12, 12, "_proj.weight") == 0;
    if (!projection && s.name != "model.embed_tokens.weight" && s.name != "lm_head.weight") continue;
    matrices += s.size;
    std::copy(rounded.begin() + s.offset, rounded.begin() + s.offset + s.size, expect.begin() + s.offset);
  }
  wide.load_base_from(expect.data());
  narrow.load_base_from(w.data());
  check(base_of(narrow) == expect,
        "lora bf16 base: projections, embedding and head come back rounded to bfloat16 (nearest even), the rest exact" + label, "");
  const std::size_t want = (wide.num_params() - matrices) * 4 + matrices * 2;
  check(wide.base_bytes() == wide.num_params() * 4 && narrow.base_bytes() == want,
        "lora bf16 base: the base holds 2 bytes per projection, embedding and head weight" + label,
        std::to_string(narrow.base_bytes()) + " of float32's " + std::to_string(wide.base_bytes()) + " bytes");
  randomise_adapters(wide, rng);
  narrow.set_state(wide.get_state());
  PolicyBatch pb = ppo_batch(wide, 3, rng);
  check(wide.logprobs(pb) == narrow.logprobs(pb) && wide.logprobs(pb, false) == narrow.logprobs(pb, false),
        "lora bf16 base: log-probs (adapters on and off) equal the float32 base's bit for bit" + label, "");
  PolicyLossConfig lc;
  lc.kl_coef = 0.5f;
  const double la = wide.policy_gradients(pb, lc).loss, lb = narrow.policy_gradients(pb, lc).loss;
  check(la == lb && wide.gradients() == narrow.gradients(),
        "lora bf16 base: the loss and the adapters' gradients (through the frozen matrices' input gradients) equal bit for bit" + label, "");
  for (int i = 0; i < 2; ++i) {
    wide.policy_step(pb, lc, OptimConfig{});
    narrow.policy_step(pb, lc, OptimConfig{});
  }
  check(wide.get_state().params == narrow.get_state().params, "lora bf16 base: two policy steps give the same adapters" + label, "");
  GenerateOptions opt;
  opt.max_new_tokens = 4;
  opt.seed = 3;
  const GenerateResult ga = wide.generate({{1, 2}, {3}}, opt), gb = narrow.generate({{1, 2}, {3}}, opt);
  check(ga.tokens == gb.tokens && ga.logprobs == gb.logprobs, "lora bf16 base: cached generation equals the float32 base's" + label, "");
}

void refuses(const std::string& name, const ModelConfig& cfg, const std::string& needle) {
  std::string msg;
  try {
    Model m(cfg, make_cpu_backend());
  } catch (const Error& e) {
    msg = e.what();
  }
  check(msg.find(needle) != std::string::npos, name, msg.empty() ? "no error" : msg);
}

void lora_refusals() {
  ModelConfig gpt2;
  gpt2.lora.rank = 4;
  refuses("lora: refused on arch gpt2, naming the reason", gpt2, "lora needs arch \"llama\"");
  ModelConfig critic = lora_llama(4, false);
  critic.value_head = true;
  refuses("lora: refused on a model with a value head", critic, "value head");
  refuses("lora: a negative rank is refused naming lora.rank", lora_llama(-1, false), "lora.rank");
  ModelConfig none = lora_llama(4, false);
  none.lora.modules = 0;
  refuses("lora: no target module is refused naming lora.modules", none, "lora.modules");
  ModelConfig certain = lora_llama(4, false);
  certain.lora.dropout = 1.0f;
  refuses("lora: dropout 1 is refused naming lora.dropout and [0, 1)", certain, "lora.dropout must be a probability in [0, 1)");
  ModelConfig trained = lora_llama(0, false);
  trained.lora.bf16_base = true;
  refuses("lora: a bfloat16 base without adapters is refused naming lora.bf16Base", trained, "lora.bf16Base");
}

}  // namespace

void run_lora_tests() {
  std::printf("== lora (cpu)\n");
  for (const bool qwen3 : {false, true}) {
    const std::string label = qwen3 ? " [qwen3, q/k norms, head_dim 6]" : " [llama, gqa, q/k/v biases]";
    const ModelConfig cfg = lora_llama(qwen3 ? 3 : 2, qwen3);
    fresh_adapters_are_the_base(label, cfg);
    adapter_gradients(label, cfg);
    training_keeps_the_base(label, cfg);
    bf16_base_matches_rounded_float32(label, cfg);
  }
  // Tied (one bfloat16 table read by the lookup and the head), and a vocabulary of 4100 ids: three
  // chunks of the head (the last of 4 ids), so generation's logits come chunk by chunk.
  ModelConfig tied = lora_llama(2, false);
  tied.tied_embeddings = true;
  bf16_base_matches_rounded_float32(" [llama, tied embeddings]", tied);
  ModelConfig chunked = lora_llama(2, true);
  chunked.vocab = 2 * kLmHeadChunk + 4;
  bf16_base_matches_rounded_float32(" [qwen3, vocab of 3 head chunks]", chunked);
  chunked.tied_embeddings = true;
  bf16_base_matches_rounded_float32(" [qwen3, tied, vocab of 3 head chunks]", chunked);
  ModelConfig some = lora_llama(2, false);
  some.lora.modules = (1u << LoraQ) | (1u << LoraV) | (1u << LoraDown);
  some.lora.rslora = true;
  adapter_gradients(" [q_proj v_proj down_proj only, rslora]", some);
  ModelConfig dropping = lora_llama(2, true);
  dropping.lora.dropout = 0.25f;
  adapter_gradients(" [dropout 0.25 at a fixed seed, qwen3]", dropping);
  dropout_checks();
  lora_refusals();
}

}  // namespace rvtest
