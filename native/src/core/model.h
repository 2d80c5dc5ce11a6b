// The policy/critic model: a decoder-only transformer, GPT-2 style or Llama style (Llama 3,
// Qwen2/2.5, Qwen3, SmolLM), whose weights, gradients, optimizer moments and activations live in one
// Backend's memory for the object's life. Written once against the Backend op list, so the CPU
// and CUDA paths run the same model code.
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

// gpt2: learned position table, LayerNorm, GELU MLP of 4 * width, biases everywhere.
// llama: rotary positions, RMSNorm, SwiGLU MLP, grouped-query attention, no biases (optionally on
// the q, k, v projections, as Qwen2 has), optionally tied embeddings, a head size of its own
// (heads * head_dim need not be width), per-head q/k RMSNorm (Qwen3) and Llama 3 rope scaling.
enum class Arch { Gpt2, Llama };

// The projections a LoRA adapter may sit beside, in Hugging Face's names (lora_module_name).
enum LoraModule { LoraQ, LoraK, LoraV, LoraO, LoraGate, LoraUp, LoraDown, kLoraModules };
const char* lora_module_name(int module);
constexpr unsigned kLoraAllModules = (1u << kLoraModules) - 1;

// Low-rank adapters (LoRA) on a llama model's projections: W x + scale * B (A x), A [rank, in]
// (Kaiming-uniform, as PEFT initialises it), B [out, rank] (zeros: a fresh adapter changes
// nothing), scale = alpha / rank, or alpha / sqrt(rank) with rslora. With rank > 0 the base weights
// are frozen (no gradient, no optimizer moments): the state, the optimizer and the weight copies
// (get_state, copy_params_to...) hold the adapters alone.
struct LoraConfig {
  int rank = 0;                       // 0: no adapters
  float alpha = 0.0f;                 // 0: 2 * rank
  bool rslora = false;
  unsigned modules = kLoraAllModules;  // bit m set: an adapter beside LoraModule m
  float dropout = 0.0f;               // drop probability of each adapter's input in policy steps, [0, 1)
  // The frozen base's projection matrices (q/k/v/o/gate/up/down), token embedding and LM head held
  // as bfloat16, a BF16 folder's own precision, in half the memory; each matrix (each vocabulary
  // chunk of the head) is widened to float32 scratch right before its product and the embedding
  // widens the rows it gathers, so the model computes exactly what a float32 base of the same
  // (bf16-rounded) weights computes.
  bool bf16_base = false;
};
float lora_scale(const LoraConfig& lora);

// "gpt2" or "llama"; throws revenant::Error naming the value otherwise.
Arch parse_arch(const std::string& name);
const char* arch_name(Arch arch);

struct ModelConfig {
  int vocab = 16;
  int context = 32;
  int width = 64;
  int layers = 2;
  int heads = 4;
  bool value_head = false;
  uint64_t seed = 0;
  Arch arch = Arch::Gpt2;
  // The keys below shape a llama model; a gpt2 model takes each one only at the value GPT-2 itself
  // implies (kv_heads = heads, intermediate = 4 * width, norm_eps = 1e-5, rope_theta = 10000, no
  // tying, attention_bias false: its biases are not optional).
  int kv_heads = 0;              // key/value heads, dividing heads; 0: heads (no grouping)
  int intermediate = 0;          // MLP hidden size; 0: default_intermediate(arch, width)
  float rope_theta = 10000.0f;   // RoPE base
  float norm_eps = 1e-5f;        // RMSNorm epsilon, > 0
  bool tied_embeddings = false;  // the LM head is the token embedding (no lm_head tensor)
  bool attention_bias = false;   // biases on the q, k and v projections (none on o_proj)
  int head_dim = 0;              // attention head size, even; 0: width / heads
  bool qk_norm = false;          // RMSNorm of each q and k head before RoPE (q_norm, k_norm: Qwen3)
  bool rope_llama3 = false;      // scale RoPE's frequencies as Llama 3 does (rope_scaling below)
  RopeScaling rope_scaling{};    // read only when rope_llama3
  // The ids that may be sampled and scored: the first valid_vocab rows of the embedding. A padded
  // vocabulary (more rows than the tokenizer has ids, as Qwen's checkpoints ship) sets it to the
  // tokenizer's size, so the padding rows are never sampled, scored or trained. 0: vocab.
  int valid_vocab = 0;
  LoraConfig lora{};             // llama only
};

// Vocabulary ids per chunk of the fused LM head (cpu/lm_head.cc): its scratch is N rows of this
// many logits, whatever the vocabulary.
constexpr int kLmHeadChunk = 2048;

// The MLP hidden size when none is given: 4 * width for gpt2; for llama 8 * ceil(width / 3), the
// 8/3 * width that gives SwiGLU's three matrices GPT-2's MLP parameter count, rounded up to a
// multiple of 8 (the rule config/ uses too).
int default_intermediate(Arch arch, int width);

// The config with its derived defaults filled in (kv_heads, intermediate, head_dim); nothing is checked.
ModelConfig resolve_config(ModelConfig cfg);

// Widths that follow from a resolved config: the residual width C, the attention width
// qC = NH * hd (C unless a llama head_dim says otherwise), packed qkv rows of qC + 2 * NKV * hd,
// MLP input rows (gpt2: 4C; llama: gate | up = 2I) and hidden rows (4C; I); Vs the ids sampled and
// scored (valid_vocab) and chunk the fused LM head's chunk (min(Vs, kLmHeadChunk)).
struct ModelDims {
  int C, V, NH, NKV, hd, qC, kvC, qkv, mlp_in, mlp_hidden, Vs, chunk;
};
ModelDims model_dims(const ModelConfig& resolved);

// What a batch shape costs, computed in 64 bits so shapes past 2^31 elements come out exact.
// `largest` is the biggest element count one op is handed (ops index with int, so it must stay
// below 2^31); `bytes` is what the buffers take.
struct ShapeCost {
  std::size_t bytes = 0;
  std::size_t largest = 0;
};
// Activations and their gradients for forward/backward over B rows of T tokens, each layer's saved
// attention taking att_floats (Backend::attention_scratch_floats); the first form counts the
// [B,NH,T,T] softmax (the CPU backend's).
ShapeCost activation_cost(const ModelConfig& resolved, std::size_t B, std::size_t T);
ShapeCost activation_cost(const ModelConfig& resolved, std::size_t B, std::size_t T, std::size_t att_floats);
// What generate() holds for B rows whose prompts share `prefill` leading positions (the batched
// prefill's B * prefill token rows of scratch) and run to `positions` (the KV cache per row).
ShapeCost generate_cost(const ModelConfig& resolved, std::size_t B, std::size_t prefill, std::size_t positions);

struct TensorSpec {
  std::string name;
  std::vector<int> shape;
  std::size_t offset = 0, size = 0;
  enum Group { Trunk, LmHead, ValueHead } group = Trunk;
  bool decay = false;  // weight decay applies to matrices only, not to biases and norms
  // Initial values: 0 (biases), 1 (norm scales), N(0, 0.02), or N(0, 0.02 / sqrt(2 * layers)) for
  // the projections that write into the residual stream.
  enum Init { Zeros, Ones, Normal, NormalResidual } init = Zeros;
};

struct OptimConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.0f;
  float max_grad_norm = 1.0f;  // <= 0: no clipping
};

// Throws revenant::Error naming the first bad field: lr, weightDecay >= 0; beta1, beta2 in [0, 1);
// eps > 0 (at 0 an untouched weight's update is 0 / 0); all finite.
void check_optim(const char* op, const OptimConfig& optim);

struct GenerateOptions {
  int max_new_tokens = 8;
  float temperature = 1.0f;
  uint64_t seed = 0;
  int eos_token = -1;  // < 0: none
  // Applied in this order to softmax(logits / temperature), as Hugging Face and vLLM do.
  int top_k = 0;       // keep the top_k most likely ids (ties at the k-th kept); 0: off
  float top_p = 1.0f;  // then the smallest set of most likely ids reaching top_p; 1: off
};

struct GenerateResult {
  int batch = 0, max_new_tokens = 0;
  std::vector<int> tokens;       // [B, max_new_tokens], 0 past each row's length
  // [B, max_new_tokens], log p of each token under softmax(logits / temperature), without the
  // top-k/top-p truncation (temperature 0: softmax(logits)), what logprobs() gives at that temperature.
  std::vector<float> logprobs;
  std::vector<float> values;     // [B, max_new_tokens] when the model has a value head
  std::vector<int> lengths;      // [B] tokens generated per row (EOS included)
};

struct TokenBatch {
  int B = 0, T = 0;
  std::vector<int> tokens;   // [B, T]
  std::vector<float> mask;   // [B, T] weight of each token in the loss (0/1 usually)
  // Log-probs, entropy and the PPO loss are of softmax(logits / temperature): the rollout's
  // temperature, so that they score the distribution the tokens were drawn from.
  float temperature = 1.0f;
};

struct PolicyBatch : TokenBatch {
  std::vector<float> advantages, old_logprobs, ref_logprobs;  // [B, T]; ref may be empty
  uint64_t dropout_seed = 0;  // LoRA dropout's mask of this step (with lora.dropout > 0)
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

  // The resolved config (kv_heads and intermediate filled in).
  const ModelConfig& config() const { return cfg_; }
  const std::vector<TensorSpec>& tensors() const { return specs_; }
  std::size_t num_params() const { return num_params_; }
  std::string backend_name() const { return be_->name(); }
  int step() const { return step_; }

  GenerateResult generate(const std::vector<std::vector<int>>& prompts, const GenerateOptions& opt);
  // adapters false: the base model's log-probs (the adapters skipped), which is the reference
  // policy of a LoRA model.
  std::vector<float> logprobs(const TokenBatch& batch, bool adapters = true);
  std::vector<float> values(const TokenBatch& batch);
  PolicyStats policy_step(const PolicyBatch& batch, const PolicyLossConfig& loss,
                          const OptimConfig& optim);
  ValueStats value_step(const ValueBatch& batch, float clip_range, const OptimConfig& optim);

  // Gradients without an update (the whole-model gradient check uses these).
  PolicyStats policy_gradients(const PolicyBatch& batch, const PolicyLossConfig& loss);
  ValueStats value_gradients(const ValueBatch& batch, float clip_range);
  std::vector<float> gradients();

  // What trains and what get_state/set_state and copy_params_to/load_params_from move: every
  // weight (num_params()), or with LoRA the adapters alone (lora_tensors(), num_lora_params()).
  std::size_t num_trained() const { return lora_on() ? num_lora_ : num_params_; }
  const std::vector<TensorSpec>& lora_tensors() const { return lora_specs_; }
  std::size_t num_lora_params() const { return num_lora_; }
  // The base weights, num_params() floats, whatever trains (a LoRA model's frozen base is loaded
  // through these).
  void copy_base_to(float* dst);
  void load_base_from(const float* src);
  // What the base weights take in the backend's memory: float32 tensors, plus the bfloat16
  // matrices, embedding and head of a lora.bf16_base model (loaded values are rounded to bfloat16, nearest even).
  std::size_t base_bytes() const { return params_.size() * sizeof(float) + base16_.size() * sizeof(uint16_t); }

  ModelState get_state();
  void set_state(const ModelState& state);
  // The weights alone, num_params() floats, to or from host memory the caller owns (a shared-memory
  // segment, a typed array): no vector in between. load_params_from leaves the AdamW moments and
  // the step as they are, so a broadcast of new weights does not reset an optimizer.
  void copy_params_to(float* dst);
  void load_params_from(const float* src);
  // Zero-copy weights (CPU only): from now on the model computes with the num_trained() floats at
  // `external` (a mapped shared-memory segment), copying nothing; the caller keeps them mapped and
  // unchanged while calls run. Such a model cannot train; load_params_from and set_state give it
  // its own copy again.
  void compute_from(float* external);
  bool computes_from_external() { return !trained_buffer().owned(); }
  // The adapters a LoRA model of this config starts from (A Kaiming-uniform from the seed, B 0).
  std::vector<float> initial_lora_params() const;
  // The weights a model of this config starts from (what the constructor loads), computed anew;
  // reads nothing the calls change, so it may run beside them.
  std::vector<float> initial_params() const;

 private:
  struct Acts;
  struct Decode;
  struct Layer;
  struct BlockIO;
  using Dims = ModelDims;
  // Offsets of each parameter by its role; kAbsent when the architecture has no such tensor.
  // Packed roles (qkv, gate|up) point at the first of their contiguous tensors.
  static constexpr std::size_t kAbsent = static_cast<std::size_t>(-1);
  struct LayerSlots {
    std::size_t ln1w = kAbsent, ln1b = kAbsent, qkvw = kAbsent, qkvb = kAbsent, attprojw = kAbsent,
                attprojb = kAbsent, ln2w = kAbsent, ln2b = kAbsent, fcw = kAbsent, fcb = kAbsent,
                fcprojw = kAbsent, fcprojb = kAbsent, qnorm = kAbsent, knorm = kAbsent;
  };
  struct GlobalSlots {
    std::size_t wte = kAbsent, wpe = kAbsent, lnfw = kAbsent, lnfb = kAbsent, lm_head = kAbsent,
                vhw = kAbsent, vhb = kAbsent;
  };
  void check_config() const;
  std::size_t add_spec(const std::string& name, std::vector<int> shape, TensorSpec::Group group,
                       TensorSpec::Init init);
  void build_specs();
  void build_gpt2_specs();
  void build_llama_specs();
  void validate(const TokenBatch& batch, const char* op) const;
  void check_fits(const char* op, const std::string& what, const ShapeCost& cost, std::size_t freed) const;
  static void require_scored(const TokenBatch& batch, const char* op);
  Acts& acts_for(int B, int T);
  void forward(Acts& a, bool want_values);
  void head_logprobs(Acts& a, float temperature, bool want_entropy);
  void backward(Acts& a, float temperature, bool with_logits, bool with_values);
  void block_forward(const Layer& w, int l, const BlockIO& x, const float* residual, int B, int T, int pos0,
                     float* kcache, float* vcache, int cache_len);
  Decode& decode_for(int B, int prefill, int positions);
  void decode_blocks(Decode& s, int B, int T, int pos0, int positions);
  void block_backward(Acts& a, const Layer& w, const Layer& g, int l, const float* residual);
  void head_forward(float* lnf, float* lnf_mean, float* lnf_rstd, const float* residual,
                    float* logits, float* scratch, float* values, int N);
  // The token embedding of B rows of T tokens at positions pos0.. into out (the table as held).
  void embed(float* out, const int* tokens, int B, int T, int pos0);
  void norm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                    const float* b, int N);
  void norm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                     const float* w, const float* mean, const float* rstd, int N);
  void mlp_act_forward(float* out, const float* inp, int N);
  void mlp_act_backward(float* dinp, const float* inp, const float* dout, int N);
  void rope(float* qkv, int B, int T, int pos0, bool backward);
  // Null for an absent tensor, and for every tensor of a null base (a LoRA model's base gradients).
  float* at(float* base, std::size_t slot) const { return slot == kAbsent || !base ? nullptr : base + slot; }
  // Entries [begin, end) of initial_params() into out (zeroed by the caller).
  void initial_range(std::size_t begin, std::size_t end, float* out) const;
  // ---- LoRA (model_lora.cc) ----
  bool lora_on() const { return cfg_.lora.rank > 0; }
  void check_lora_config() const;
  void build_lora_specs();
  // out (rows ld apart) += the adapters of modules first..last of layer l on inp, each writing its
  // block of the packed rows; nothing when the model has no adapters or they are switched off.
  void lora_add(int l, int first, int last, float* out, const float* inp, int N);
  // Their backward: dA, dB accumulate into lora_g_, dinp += the input's gradient.
  void lora_grad(int l, int first, int last, float* dinp, const float* dout, const float* inp, int N);
  void lora_scratch(std::size_t rows);
  // ---- a bfloat16 frozen base (model_base16.cc) ----
  bool base16_on() const { return lora_on() && cfg_.lora.bf16_base; }
  // Moves the projection matrices, the token embedding and the LM head into base16_ and the rest
  // into a compact params_, remapping the slots (a held matrix's slot becomes kAbsent: its product
  // goes through frozen(), the embedding's through embed(), the head's through head16()).
  void build_base16();
  // Flat entries [begin, begin + n) of the base (specs_' offsets) into or out of wherever they are held.
  void store_base(std::size_t begin, std::size_t n, const float* src);
  void fetch_base(std::size_t begin, std::size_t n, float* dst);
  // The float32 matrix a block's product reads: w itself, or with a bfloat16 base the layer's
  // matrix `which` widened into widened_ (valid until the next call).
  enum FrozenMatrix { kQkvW, kAttProjW, kFcW, kFcProjW, kFrozenMatrices };
  const float* frozen(const float* w, int l, FrozenMatrix which);
  // The LM head as bfloat16 (null unless a bfloat16 base holds it), what lm_head_forward and
  // lm_head_backward widen chunk by chunk into widened_.
  const uint16_t* head16() const { return head16_ == kAbsent ? nullptr : base16_.get() + head16_; }
  // Set while a policy step computes (the adapters' dropout applies then, never when scoring or
  // sampling), with the step's mask seed.
  bool lora_training_ = false;
  bool dropping() const { return lora_training_ && cfg_.lora.dropout > 0; }
  uint64_t lora_dropout_seed_ = 0;
  // What trains: every weight, or the adapters of a LoRA model.
  struct Trained {
    float *p, *g, *m, *v;
    std::size_t n;
    const std::vector<TensorSpec>* specs;
  };
  Trained trained();
  DeviceBuffer<float>& trained_buffer() { return lora_on() ? lora_p_ : params_; }
  void own_trained();  // ends compute_from: the weights back in a buffer of the model's own
  void check_owns_weights(const char* op);  // a model computing from borrowed weights cannot train
  // The step's statistics on the backend (model.cc says the layout).
  static constexpr int kStatGradSquares = kPolicyStats, kStatUpdateProbe = kPolicyStats + 1,
                       kStatCount = kPolicyStats + 2;
  double* step_stats();
  std::vector<double> read_stats();
  static PolicyStats policy_stats(const std::vector<double>& h);
  static ValueStats value_stats(const std::vector<double>& h);
  void upload_rows(float* dst, const std::vector<float>& rows);
  void queue_policy_gradients(const PolicyBatch& batch, const PolicyLossConfig& loss);
  void queue_value_gradients(const ValueBatch& batch, float clip_range);
  void queue_update_probe(const OptimConfig& optim, TensorSpec::Group skip);
  void apply_update(const char* op, const OptimConfig& optim, TensorSpec::Group skip, double loss,
                    const std::vector<double>& h);
  Layer layer(float* base, int l) const;
  std::vector<float> row_targets(const TokenBatch& batch, std::vector<int>& targets) const;

  ModelConfig cfg_;
  Dims d_{};
  std::unique_ptr<Backend> be_;
  std::vector<TensorSpec> specs_;
  std::vector<LayerSlots> layer_slots_;
  GlobalSlots slots_;
  std::size_t num_params_ = 0;
  DeviceBuffer<float> params_, grads_, m_, v_;
  std::unique_ptr<Acts> acts_;
  std::size_t acts_bytes_ = 0;     // what acts_ holds, given back before a new shape is allocated
  std::unique_ptr<Decode> decode_;  // generate()'s KV caches and scratch, kept between calls
  std::size_t decode_bytes_ = 0;
  DeviceBuffer<double> stats_;     // the step's statistics (step_stats)
  DeviceBuffer<float> clip_;       // the step's gradient clipping factor (clip_scale)
  int step_ = 0;
  // LoRA: the adapter tensors (their own flat layout), their offsets by layer and module (a then
  // b; kAbsent when the module has none), weights, gradients, moments and the u/du scratch.
  std::vector<TensorSpec> lora_specs_;
  std::vector<std::size_t> lora_slots_;  // [layer][module][a | b]
  std::size_t num_lora_ = 0;
  float lora_scale_ = 0.0f;
  bool adapters_on_ = true;
  DeviceBuffer<float> lora_p_, lora_g_, lora_m_, lora_v_, lora_u_, lora_du_, lora_x_, lora_dx_;
  // A bfloat16 base (model_base16.cc): where each spec is held, the held matrices, their scratch.
  // Declared after be_, so that they are released before the backend goes.
  std::vector<std::size_t> home_;     // per spec: its offset in params_, or in base16_ when held16_
  std::vector<char> held16_;          // per spec: held as bfloat16
  std::vector<std::size_t> frozen16_;  // [layer][FrozenMatrix]: offsets into base16_
  std::size_t emb16_ = kAbsent, head16_ = kAbsent;  // the token embedding and the LM head in base16_ (tied: one)
  DeviceBuffer<uint16_t> base16_;
  DeviceBuffer<float> widened_;
};

// Parses nothing, allocates nothing: the parameter count a config implies.
std::size_t count_params(const ModelConfig& cfg);

}  // namespace revenant
