// The policy/critic model: a GPT-2-style decoder-only transformer whose weights, gradients,
// optimizer moments and activations live in one Backend's memory for the object's life.
// Written once against the Backend op list, so the CPU and CUDA paths run the same model code.
//
// Position convention shared by logprobs(), values(), policy_step() and value_step(): for a row
// of tokens [B, T], entry t (t >= 1) belongs to token t and is computed from the hidden state at
// position t-1 (the state that chose token t). Entry 0 and entries with mask 0 are 0.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/ppo.h"

namespace revenant {

struct ModelConfig {
  int vocab = 16;
  int context = 32;
  int width = 64;
  int layers = 2;
  int heads = 4;
  bool value_head = false;
  uint64_t seed = 0;
};

struct TensorSpec {
  std::string name;
  std::vector<int> shape;
  std::size_t offset = 0, size = 0;
  enum Group { Trunk, LmHead, ValueHead } group = Trunk;
  bool decay = false;  // weight decay applies to matrices only, not to biases and norms
};

struct OptimConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  float max_grad_norm = 1.0f;  // <= 0: no clipping
};

struct GenerateOptions {
  int max_new_tokens = 8;
  float temperature = 1.0f;
  uint64_t seed = 0;
  int eos_token = -1;  // < 0: none
};

struct GenerateResult {
  int batch = 0, max_new_tokens = 0;
  std::vector<int> tokens;       // [B, max_new_tokens], 0 past each row's length
  std::vector<float> logprobs;   // [B, max_new_tokens], log p (temperature 1) of each token
  std::vector<float> values;     // [B, max_new_tokens] when the model has a value head
  std::vector<int> lengths;      // [B] tokens generated per row (EOS included)
};

struct TokenBatch {
  int B = 0, T = 0;
  std::vector<int> tokens;   // [B, T]
  std::vector<float> mask;   // [B, T] weight of each token in the loss (0/1 usually)
};

struct PolicyBatch : TokenBatch {
  std::vector<float> advantages, old_logprobs, ref_logprobs;  // [B, T]; ref may be empty
};

struct ValueBatch : TokenBatch {
  std::vector<float> returns, old_values;  // [B, T]
};

struct PolicyStats {
  double pg_loss, kl_loss, entropy, clip_frac, approx_kl, grad_norm, loss;
};

struct ValueStats {
  double vf_loss, vf_clip_frac, grad_norm;
};

struct ModelState {
  std::vector<float> params, adam_m, adam_v;
  int step = 0;
};

class Model {
 public:
  Model(const ModelConfig& cfg, std::unique_ptr<Backend> backend);
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  const std::vector<TensorSpec>& tensors() const { return specs_; }
  std::size_t num_params() const { return num_params_; }
  std::string backend_name() const { return be_->name(); }
  int step() const { return step_; }

  GenerateResult generate(const std::vector<std::vector<int>>& prompts, const GenerateOptions& opt);
  std::vector<float> logprobs(const TokenBatch& batch);
  std::vector<float> values(const TokenBatch& batch);
  PolicyStats policy_step(const PolicyBatch& batch, const PolicyLossConfig& loss,
                          const OptimConfig& optim);
  ValueStats value_step(const ValueBatch& batch, float clip_range, const OptimConfig& optim);

  // Gradients without an update (the whole-model gradient check uses these).
  PolicyStats policy_gradients(const PolicyBatch& batch, const PolicyLossConfig& loss);
  ValueStats value_gradients(const ValueBatch& batch, float clip_range);
  std::vector<float> gradients();

  ModelState get_state();
  void set_state(const ModelState& state);

 private:
  struct Acts;
  struct Layer;
  void build_specs();
  void init_weights();
  void validate(const TokenBatch& batch, const char* op) const;
  Acts& acts_for(int B, int T);
  void forward(Acts& a, bool want_logits, bool want_values);
  void backward(Acts& a, bool with_logits, bool with_values);
  void optimizer_step(const OptimConfig& optim, TensorSpec::Group skip, double grad_norm);
  void step_if_finite(const char* op, double loss, double grad_norm, const OptimConfig& optim, TensorSpec::Group skip);
  Layer layer(float* base, int l) const;
  std::vector<float> row_targets(const TokenBatch& batch, std::vector<int>& targets) const;

  ModelConfig cfg_;
  std::unique_ptr<Backend> be_;
  std::vector<TensorSpec> specs_;
  std::size_t num_params_ = 0;
  DeviceBuffer<float> params_, grads_, m_, v_;
  std::unique_ptr<Acts> acts_;
  int step_ = 0;
};

// Parses nothing, allocates nothing: the parameter count a config implies.
std::size_t count_params(const ModelConfig& cfg);

}  // namespace revenant
