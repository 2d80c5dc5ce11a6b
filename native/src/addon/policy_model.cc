// PolicyModelNative: the Node-API class that owns one revenant::Model. Every call that touches the
// weights (generate, logprobs, values, policyStep, valueStep, getState, setState, copyParamsTo,
// loadParamsFrom, dispose) copies its inputs on the JavaScript thread and joins the model's queue; the queue runs one call at a
// time, in the order the calls were made, on a libuv worker (Napi::AsyncWorker), and each call
// resolves a Promise. A waiting call holds no thread (only the running one is handed to libuv), so
// a long queue never starves the runtime's other work, and the JavaScript thread never waits.
// info() and step read only what the calls do not change (the tensor list) or what the last
// finished call published, so a health check answers at once while a long call runs.
#include "addon/policy_model.h"

#include <atomic>
#include <deque>
#include <functional>
#include <memory>

#include "addon/convert.h"
#include "addon/device_lost.h"
#include "core/model.h"

namespace revenant::addon {
namespace {

class Job;

// One model and its queue. `model` is used by the running job alone (the JavaScript thread only
// reads what never changes); `waiting`, `running` and `disposed` belong to the JavaScript thread.
struct Shared {
  std::unique_ptr<Model> model;
  std::atomic<int> step{0};  // the model's step after the last finished call
  std::deque<Job*> waiting;
  bool running = false;
  bool disposed = false;  // dispose() was called: the model goes when the calls before it are done
};

void run_next(Shared& shared);

// One queued call: `work` runs off the JavaScript thread, then `done` on it builds the resolved
// value. Libuv deletes the job once it has settled.
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, Napi::Object owner, std::shared_ptr<Shared> shared, std::function<void(Model&)> work,
      std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), shared_(std::move(shared)),
        work_(std::move(work)), done_(std::move(done)) {
    owner_ = Napi::Persistent(owner);  // the JavaScript object (and so the model) outlives its calls
  }
  Napi::Promise promise() { return deferred_.Promise(); }

  // A lost device ends the process here, on the worker, before anything else can use the context.
  void Execute() override {
    exiting_on_device_lost([this] { work_(*shared_->model); });
    if (shared_->model) shared_->step.store(shared_->model->step());
  }
  // The next call starts before this one's promise settles, so the model is never idle while
  // JavaScript handles a result.
  void OnOK() override {
    finish();
    deferred_.Resolve(done_(Env()));
  }
  void OnError(const Napi::Error& e) override {
    finish();
    deferred_.Reject(e.Value());
  }

 private:
  void finish() {
    shared_->running = false;
    run_next(*shared_);
  }
  Napi::Promise::Deferred deferred_;
  Napi::ObjectReference owner_;
  std::shared_ptr<Shared> shared_;
  std::function<void(Model&)> work_;
  std::function<Napi::Value(Napi::Env)> done_;
};

void run_next(Shared& shared) {
  if (shared.running || shared.waiting.empty()) return;
  Job* job = shared.waiting.front();
  shared.waiting.pop_front();
  shared.running = true;
  job->Queue();
}

Napi::Error disposed_error(Napi::Env env) {
  return Napi::Error::New(env, "model: this model was disposed; calls made after dispose() are refused");
}

// Appends a call to the model's queue; the promise settles when it has run. A call made after
// dispose() is refused at once.
Napi::Promise queue_job(Napi::Env env, Napi::Object owner, const std::shared_ptr<Shared>& shared,
                        std::function<void(Model&)> work, std::function<Napi::Value(Napi::Env)> done) {
  if (shared->disposed) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(disposed_error(env).Value());
    return deferred.Promise();
  }
  auto* job = new Job(env, owner, shared, std::move(work), std::move(done));
  Napi::Promise p = job->promise();
  shared->waiting.push_back(job);
  run_next(*shared);
  return p;
}

Napi::Value undefined(Napi::Env env) { return env.Undefined(); }

template <typename Batch>
Batch read_token_batch(const Napi::Object& b) {
  Batch batch;
  batch.B = get_int(b, "batch");
  batch.T = get_int(b, "seqLen");
  batch.tokens = get_i32(b, "tokens");
  batch.mask = get_f32(b, "mask");
  return batch;
}

OptimConfig read_optim(const Napi::Object& h) {
  OptimConfig o;
  o.lr = static_cast<float>(get_number(h, "lr"));
  o.beta1 = static_cast<float>(get_number(h, "beta1"));
  o.beta2 = static_cast<float>(get_number(h, "beta2"));
  o.eps = static_cast<float>(get_number(h, "eps"));
  o.weight_decay = static_cast<float>(get_number(h, "weightDecay"));
  o.max_grad_norm = static_cast<float>(get_number(h, "maxGradNorm"));
  return o;
}

// Optional config keys: absent (or undefined/null) means the default.
bool get_bool_or(const Napi::Object& o, const char* key, bool fallback) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string get_string_or(const Napi::Object& o, const char* key, const std::string& fallback) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

int get_int_or(const Napi::Object& o, const char* key, int fallback) {
  const Napi::Value v = o.Get(key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  return get_int(o, key);
}

ModelConfig read_config(const Napi::Object& c) {
  ModelConfig cfg;
  cfg.vocab = get_int(c, "vocab");
  cfg.context = get_int(c, "context");
  cfg.width = get_int(c, "width");
  cfg.layers = get_int(c, "layers");
  cfg.heads = get_int(c, "heads");
  cfg.value_head = c.Get("valueHead").ToBoolean().Value();
  cfg.seed = static_cast<uint64_t>(get_number(c, "seed"));
  cfg.arch = parse_arch(get_string_or(c, "arch", "gpt2"));
  cfg.kv_heads = get_int_or(c, "kvHeads", 0);
  cfg.intermediate = get_int_or(c, "intermediate", 0);
  cfg.rope_theta = static_cast<float>(get_number_or(c, "ropeTheta", cfg.rope_theta));
  cfg.norm_eps = static_cast<float>(get_number_or(c, "normEps", cfg.norm_eps));
  cfg.tied_embeddings = get_bool_or(c, "tiedEmbeddings", false);
  cfg.attention_bias = get_bool_or(c, "attentionBias", false);
  cfg.head_dim = get_int_or(c, "headDim", 0);
  cfg.qk_norm = get_bool_or(c, "qkNorm", false);
  // ropeScaling: null or absent (plain RoPE), or Llama 3's {factor, lowFreqFactor, highFreqFactor, originalContext}.
  const Napi::Value rs = c.Get("ropeScaling");
  if (!rs.IsUndefined() && !rs.IsNull()) {
    if (!rs.IsObject()) throw Napi::TypeError::New(c.Env(), "ropeScaling must be null or an object");
    const Napi::Object r = rs.As<Napi::Object>();
    cfg.rope_llama3 = true;
    cfg.rope_scaling.factor = static_cast<float>(get_number(r, "factor"));
    cfg.rope_scaling.low_freq_factor = static_cast<float>(get_number(r, "lowFreqFactor"));
    cfg.rope_scaling.high_freq_factor = static_cast<float>(get_number(r, "highFreqFactor"));
    cfg.rope_scaling.original_context = static_cast<float>(get_number(r, "originalContext"));
  }
  cfg.valid_vocab = get_int_or(c, "validVocab", 0);
  // lora: null or absent (no adapters), or {rank, alpha?, rslora?, dropout?, modules?: string[], bf16Base?}.
  const Napi::Value lv = c.Get("lora");
  if (!lv.IsUndefined() && !lv.IsNull()) {
    if (!lv.IsObject()) throw Napi::TypeError::New(c.Env(), "lora must be null or an object {rank, alpha?, rslora?, modules?}");
    const Napi::Object l = lv.As<Napi::Object>();
    cfg.lora.rank = get_int(l, "rank");
    cfg.lora.alpha = static_cast<float>(get_number_or(l, "alpha", 0));
    cfg.lora.rslora = get_bool_or(l, "rslora", false);
    cfg.lora.dropout = static_cast<float>(get_number_or(l, "dropout", 0));
    cfg.lora.bf16_base = get_bool_or(l, "bf16Base", false);
    const Napi::Value mods = l.Get("modules");
    if (!mods.IsUndefined()) {
      if (!mods.IsArray()) throw Napi::TypeError::New(c.Env(), "lora.modules must be an array of projection names");
      const Napi::Array a = mods.As<Napi::Array>();
      cfg.lora.modules = 0;
      for (uint32_t i = 0; i < a.Length(); ++i) {
        const std::string name = a.Get(i).ToString().Utf8Value();
        int found = -1;
        for (int m = 0; m < kLoraModules; ++m)
          if (name == lora_module_name(m)) found = m;
        if (found < 0)
          throw Napi::TypeError::New(c.Env(), "lora.modules[" + std::to_string(i) + "] is \"" + name +
                                                  "\"; allowed: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj");
        cfg.lora.modules |= 1u << found;
      }
    }
  }
  return cfg;
}

// copyParamsTo(dst) and loadParamsFrom(src) move the weights between the model and a Float32Array
// the caller owns (typically a view of a shared-memory segment) without copying it first: the
// queued work reads or writes the array's memory itself. A reference keeps the array alive until
// the call settles; the caller must not detach or transfer its buffer meanwhile.
// The Float32Array argument of a weights copy, checked: `num_params` floats.
Napi::Float32Array params_array(const Napi::CallbackInfo& info, std::size_t num_params, const char* method,
                                const char* arg, const char* what) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, std::string(method) + "(" + arg + ": Float32Array): " + arg + " must be a Float32Array");
  Napi::Float32Array a = info[0].As<Napi::Float32Array>();
  if (a.ElementLength() != num_params)
    throw Napi::RangeError::New(env, std::string(method) + ": " + arg + " holds " + std::to_string(a.ElementLength()) +
                                         " floats, expected " + std::to_string(num_params) + " (" + what + ")");
  return a;
}

Napi::Promise queue_param_copy(const Napi::CallbackInfo& info, Napi::Object owner, const std::shared_ptr<Shared>& shared,
                               std::size_t num_params, const char* method, const char* arg,
                               void (*copy)(Model&, float*), const char* what) {
  Napi::Float32Array a = params_array(info, num_params, method, arg, what);
  float* data = a.Data();
  auto keep = std::make_shared<Napi::ObjectReference>(Napi::Persistent(a.As<Napi::Object>()));
  // `keep` lives in the done callback, which is destroyed on the JavaScript thread with the job.
  return queue_job(
      info.Env(), owner, shared, [data, copy](Model& m) { copy(m, data); }, [keep](Napi::Env env) { return env.Undefined(); });
}

}  // namespace

struct PolicyModelNative::Impl {
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  // Read on the JavaScript thread to check array lengths; the model itself may be mid-call.
  std::size_t num_params = 0, num_trained = 0;
  std::string device;    // "cpu" or "cuda:N"
  std::string fallback;  // why device "auto" runs on the CPU; "" otherwise
  Backend* backend = nullptr;  // the model's; lives as long as the model (for the test hook)
};

Napi::Function PolicyModelNative::Define(Napi::Env env) {
  return DefineClass(env, "PolicyModelNative",
                     {InstanceMethod("info", &PolicyModelNative::Info),
                      InstanceMethod("generate", &PolicyModelNative::Generate),
                      InstanceMethod("logprobs", &PolicyModelNative::Logprobs),
                      InstanceMethod("values", &PolicyModelNative::Values),
                      InstanceMethod("policyStep", &PolicyModelNative::PolicyStep),
                      InstanceMethod("valueStep", &PolicyModelNative::ValueStep),
                      InstanceMethod("getState", &PolicyModelNative::GetState),
                      InstanceMethod("setState", &PolicyModelNative::SetState),
                      InstanceMethod("copyParamsTo", &PolicyModelNative::CopyParamsTo),
                      InstanceMethod("loadParamsFrom", &PolicyModelNative::LoadParamsFrom),
                      InstanceMethod("computeFrom", &PolicyModelNative::ComputeFrom),
                      InstanceMethod("copyBaseTo", &PolicyModelNative::CopyBaseTo),
                      InstanceMethod("loadBaseFrom", &PolicyModelNative::LoadBaseFrom),
                      InstanceMethod("initialLoraParams", &PolicyModelNative::InitialLoraParams),
                      InstanceMethod("dispose", &PolicyModelNative::Dispose),
                      InstanceMethod("initialParams", &PolicyModelNative::InitialParams),
                      InstanceMethod("__testDeviceLost", &PolicyModelNative::TestDeviceLost)});
}

// new PolicyModelNative({vocab, context, width, layers, heads, valueHead, seed, arch?, kvHeads?,
//                        intermediate?, ropeTheta?, normEps?, tiedEmbeddings?, attentionBias?, headDim?,
//                        qkNorm?, ropeScaling?}, device)
PolicyModelNative::PolicyModelNative(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<PolicyModelNative>(info), impl_(std::make_unique<Impl>()) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsString())
    throw Napi::TypeError::New(env, "PolicyModelNative(config: object, device: string)");
  const ModelConfig cfg = read_config(info[0].As<Napi::Object>());
  BackendChoice choice = exiting_on_device_lost([&] { return choose_backend(info[1].As<Napi::String>().Utf8Value()); });
  impl_->device = choice.device;
  impl_->fallback = choice.fallback;
  impl_->backend = choice.backend.get();
  impl_->shared->model = exiting_on_device_lost([&] { return std::make_unique<Model>(cfg, std::move(choice.backend)); });
  impl_->shared->step.store(impl_->shared->model->step());
  impl_->num_params = impl_->shared->model->num_params();
  impl_->num_trained = impl_->shared->model->num_trained();
}

PolicyModelNative::~PolicyModelNative() = default;

// For the JavaScript thread's reads of what no call changes (config, tensor list, backend name).
// The model is freed only by the dispose job, which runs after `disposed` is set here.
Model& PolicyModelNative::model(Napi::Env env) {
  if (impl_->shared->disposed) throw disposed_error(env);
  return *impl_->shared->model;
}

Napi::Value PolicyModelNative::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Model& m = model(env);
  Napi::Object out = Napi::Object::New(env);
  out.Set("backend", m.backend_name());
  out.Set("device", impl_->device);
  out.Set("fallback", impl_->fallback.empty() ? env.Null() : Napi::String::New(env, impl_->fallback));
  out.Set("numParams", static_cast<double>(m.num_params()));
  out.Set("numTrained", static_cast<double>(m.num_trained()));
  out.Set("baseBytes", static_cast<double>(m.base_bytes()));
  out.Set("step", impl_->shared->step.load());
  const auto list = [&](const std::vector<TensorSpec>& specs) {
    Napi::Array tensors = Napi::Array::New(env, specs.size());
    for (std::size_t i = 0; i < specs.size(); ++i) {
      const TensorSpec& s = specs[i];
      Napi::Object t = Napi::Object::New(env);
      t.Set("name", s.name);
      Napi::Array shape = Napi::Array::New(env, s.shape.size());
      for (std::size_t d = 0; d < s.shape.size(); ++d) shape[d] = s.shape[d];
      t.Set("shape", shape);
      t.Set("offset", static_cast<double>(s.offset));
      t.Set("size", static_cast<double>(s.size));
      tensors[i] = t;
    }
    return tensors;
  };
  out.Set("tensors", list(m.tensors()));
  out.Set("loraTensors", list(m.lora_tensors()));
  return out;
}

// generate(prompts: Int32Array[], {maxNewTokens, temperature, seed, eosToken, topK?, topP?})
Napi::Value PolicyModelNative::Generate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsArray() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "generate(prompts: Int32Array[], options: object)");
  const Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::vector<int>> prompts(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i)
    prompts[i] = get_array<int32_t>(env, arr.Get(i), "prompts[" + std::to_string(i) + "]", napi_int32_array, "Int32Array");
  const Napi::Object o = info[1].As<Napi::Object>();
  GenerateOptions opt;
  opt.max_new_tokens = get_int(o, "maxNewTokens");
  opt.temperature = static_cast<float>(get_number(o, "temperature"));
  opt.seed = static_cast<uint64_t>(get_number(o, "seed"));
  opt.eos_token = static_cast<int>(get_number_or(o, "eosToken", -1));
  opt.top_k = get_int_or(o, "topK", 0);
  opt.top_p = static_cast<float>(get_number_or(o, "topP", 1.0));
  auto result = std::make_shared<GenerateResult>();
  return queue_job(
      env, Value(), impl_->shared, [=](Model& m) { *result = m.generate(prompts, opt); },
      [result](Napi::Env env) {
        Napi::Object out = Napi::Object::New(env);
        out.Set("batch", result->batch);
        out.Set("maxNewTokens", result->max_new_tokens);
        out.Set("tokens", to_js<int32_t>(env, result->tokens));
        out.Set("logprobs", to_js<float>(env, result->logprobs));
        out.Set("values", result->values.empty() ? env.Null() : Napi::Value(to_js<float>(env, result->values)));
        out.Set("lengths", to_js<int32_t>(env, result->lengths));
        return out;
      });
}

Napi::Value PolicyModelNative::Logprobs(const Napi::CallbackInfo& info) { return PerToken(info, false); }
Napi::Value PolicyModelNative::Values(const Napi::CallbackInfo& info) { return PerToken(info, true); }

// logprobs({tokens, mask, batch, seqLen}, {temperature}?) / values({tokens, mask, batch, seqLen})
//   -> Float32Array [batch * seqLen]
Napi::Value PolicyModelNative::PerToken(const Napi::CallbackInfo& info, bool values) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject())
    throw Napi::TypeError::New(env, std::string(values ? "values" : "logprobs") + "(batch: {tokens, mask, batch, seqLen})");
  TokenBatch batch = read_token_batch<TokenBatch>(info[0].As<Napi::Object>());
  // logprobs(batch, {temperature?, adapters?}); adapters false: the base model's log-probs, a LoRA
  // model's reference policy.
  bool adapters = true;
  if (!values && info.Length() >= 2 && info[1].IsObject()) {
    batch.temperature = static_cast<float>(get_number_or(info[1].As<Napi::Object>(), "temperature", 1.0));
    adapters = get_bool_or(info[1].As<Napi::Object>(), "adapters", true);
  }
  auto out = std::make_shared<std::vector<float>>();
  return queue_job(
      env, Value(), impl_->shared, [=](Model& m) { *out = values ? m.values(batch) : m.logprobs(batch, adapters); },
      [out](Napi::Env env) { return to_js<float>(env, *out); });
}

// policyStep({tokens, mask, advantages, oldLogprobs, refLogprobs?, batch, seqLen},
//            {lr, clipRatio, klCoef, entropyCoef, lossNorm?, maxGradNorm, weightDecay, beta1, beta2, eps, temperature?})
Napi::Value PolicyModelNative::PolicyStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "policyStep(batch: object, hyper: object)");
  const Napi::Object b = info[0].As<Napi::Object>(), h = info[1].As<Napi::Object>();
  PolicyBatch batch = read_token_batch<PolicyBatch>(b);
  batch.advantages = get_f32(b, "advantages");
  batch.old_logprobs = get_f32(b, "oldLogprobs");
  if (!b.Get("refLogprobs").IsUndefined() && !b.Get("refLogprobs").IsNull()) batch.ref_logprobs = get_f32(b, "refLogprobs");
  batch.temperature = static_cast<float>(get_number_or(h, "temperature", 1.0));
  batch.dropout_seed = static_cast<uint64_t>(get_number_or(h, "dropoutSeed", 0));
  PolicyLossConfig loss;
  loss.clip_ratio = static_cast<float>(get_number(h, "clipRatio"));
  loss.kl_coef = static_cast<float>(get_number(h, "klCoef"));
  loss.entropy_coef = static_cast<float>(get_number(h, "entropyCoef"));
  if (!h.Get("lossNorm").IsUndefined()) loss.loss_norm = static_cast<float>(get_number(h, "lossNorm"));
  const OptimConfig optim = read_optim(h);
  auto stats = std::make_shared<PolicyStats>();
  return queue_job(
      env, Value(), impl_->shared, [=](Model& m) { *stats = m.policy_step(batch, loss, optim); },
      [stats](Napi::Env env) {
        Napi::Object out = Napi::Object::New(env);
        out.Set("pgLoss", stats->pg_loss);
        out.Set("klLoss", stats->kl_loss);
        out.Set("entropy", stats->entropy);
        out.Set("clipFrac", stats->clip_frac);
        out.Set("approxKl", stats->approx_kl);
        out.Set("gradNorm", stats->grad_norm);
        out.Set("loss", stats->loss);
        return out;
      });
}

// valueStep({tokens, mask, returns, oldValues, batch, seqLen},
//           {lr, clipRange, maxGradNorm, weightDecay, beta1, beta2, eps})
Napi::Value PolicyModelNative::ValueStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsObject() || !info[1].IsObject())
    throw Napi::TypeError::New(env, "valueStep(batch: object, hyper: object)");
  const Napi::Object b = info[0].As<Napi::Object>(), h = info[1].As<Napi::Object>();
  ValueBatch batch = read_token_batch<ValueBatch>(b);
  batch.returns = get_f32(b, "returns");
  batch.old_values = get_f32(b, "oldValues");
  const float clip = static_cast<float>(get_number(h, "clipRange"));
  const OptimConfig optim = read_optim(h);
  auto stats = std::make_shared<ValueStats>();
  return queue_job(
      env, Value(), impl_->shared, [=](Model& m) { *stats = m.value_step(batch, clip, optim); },
      [stats](Napi::Env env) {
        Napi::Object out = Napi::Object::New(env);
        out.Set("vfLoss", stats->vf_loss);
        out.Set("vfClipFrac", stats->vf_clip_frac);
        out.Set("gradNorm", stats->grad_norm);
        return out;
      });
}

// getState() -> Promise<{params, adamM, adamV, step}>: queued like any call, so the state is the
// one the calls made before it leave.
Napi::Value PolicyModelNative::GetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = std::make_shared<ModelState>();
  return queue_job(
      env, Value(), impl_->shared, [state](Model& m) { *state = m.get_state(); },
      [state](Napi::Env env) {
        Napi::Object out = Napi::Object::New(env);
        out.Set("params", to_js<float>(env, state->params));
        out.Set("adamM", to_js<float>(env, state->adam_m));
        out.Set("adamV", to_js<float>(env, state->adam_v));
        out.Set("step", state->step);
        return out;
      });
}

// setState(state) -> Promise<void>, queued: the calls made after it see the new state.
Napi::Value PolicyModelNative::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "setState(state: object)");
  const Napi::Object o = info[0].As<Napi::Object>();
  auto state = std::make_shared<ModelState>();
  state->params = get_f32(o, "params");
  state->adam_m = get_f32(o, "adamM");
  state->adam_v = get_f32(o, "adamV");
  state->step = get_int(o, "step");
  return queue_job(env, Value(), impl_->shared, [state](Model& m) { m.set_state(*state); }, undefined);
}

// copyParamsTo(dst: Float32Array) -> Promise<void>, queued: dst receives the weights the calls made
// before it leave.
Napi::Value PolicyModelNative::CopyParamsTo(const Napi::CallbackInfo& info) {
  return queue_param_copy(info, Value(), impl_->shared, impl_->num_trained, "copyParamsTo", "dst",
                          [](Model& m, float* dst) { m.copy_params_to(dst); }, trained_what());
}

// What copyParamsTo and loadParamsFrom move: every weight, or a LoRA model's adapters alone.
const char* PolicyModelNative::trained_what() const {
  return impl_->num_trained == impl_->num_params ? "this model's parameter count" : "this model's LoRA adapter count";
}

// copyBaseTo(dst) / loadBaseFrom(src): every base weight (numParams floats), whatever trains; a
// LoRA model's frozen base goes in and out through these.
Napi::Value PolicyModelNative::CopyBaseTo(const Napi::CallbackInfo& info) {
  return queue_param_copy(info, Value(), impl_->shared, impl_->num_params, "copyBaseTo", "dst",
                          [](Model& m, float* dst) { m.copy_base_to(dst); }, "this model's parameter count");
}

Napi::Value PolicyModelNative::LoadBaseFrom(const Napi::CallbackInfo& info) {
  return queue_param_copy(info, Value(), impl_->shared, impl_->num_params, "loadBaseFrom", "src",
                          [](Model& m, float* src) { m.load_base_from(src); }, "this model's parameter count");
}

// loadParamsFrom(src: Float32Array) -> Promise<void>, queued: the weights only; AdamW moments and
// step stay.
Napi::Value PolicyModelNative::LoadParamsFrom(const Napi::CallbackInfo& info) {
  return queue_param_copy(info, Value(), impl_->shared, impl_->num_trained, "loadParamsFrom", "src",
                          [](Model& m, float* src) { m.load_params_from(src); }, trained_what());
}

// computeFrom(view: Float32Array) -> Promise<void>, queued: the calls after it compute with the
// weights in `view` itself (CPU only; see Model::compute_from). The model holds `view` until the
// next computeFrom; the array it held before is let go once the calls made before this one ran.
Napi::Value PolicyModelNative::ComputeFrom(const Napi::CallbackInfo& info) {
  Napi::Float32Array view = params_array(info, impl_->num_trained, "computeFrom", "view", trained_what());
  float* data = view.Data();
  // The array lent before stays held until the model reaches this call (the done callback runs,
  // and is destroyed, on the JavaScript thread after the job): calls queued before still use it.
  auto before = std::make_shared<Napi::ObjectReference>(std::move(lent_));
  lent_ = Napi::Persistent(view.As<Napi::Object>());
  return queue_job(
      info.Env(), Value(), impl_->shared, [data](Model& m) { m.compute_from(data); },
      [before](Napi::Env env) { return env.Undefined(); });
}

// dispose() -> Promise<void>: the calls already made still run; later ones are refused at once;
// the weights are freed when the queue reaches this call. Calling it again changes nothing.
Napi::Value PolicyModelNative::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::shared_ptr<Shared>& shared = impl_->shared;
  if (shared->disposed) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Resolve(env.Undefined());
    return deferred.Promise();
  }
  Napi::Promise p = queue_job(env, Value(), shared, [shared](Model&) { shared->model.reset(); }, undefined);
  shared->disposed = true;
  return p;
}

// initialParams() -> Float32Array: the weights this config starts from, computed anew on the
// JavaScript thread (as the constructor does); it reads nothing a queued call changes.
Napi::Value PolicyModelNative::InitialParams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return to_js<float>(env, exiting_on_device_lost([&] { return model(env).initial_params(); }));
}

// initialLoraParams() -> Float32Array: the adapters this config starts from (empty without LoRA).
Napi::Value PolicyModelNative::InitialLoraParams(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return to_js<float>(env, model(env).initial_lora_params());
}

// __testDeviceLost() -> Promise that never settles: a test hook. Queues a call that fails as a
// lost device does (Backend::test_device_lost: a real kernel fault on CUDA, the same error raised
// directly on the CPU), so the exit path (print, exit kDeviceLostExitCode, restart by the
// supervisor) is tested on every machine, and the sticky-error classification where a GPU is.
Napi::Value PolicyModelNative::TestDeviceLost(const Napi::CallbackInfo& info) {
  Backend* backend = impl_->backend;
  return queue_job(info.Env(), Value(), impl_->shared, [backend](Model&) { backend->test_device_lost(); }, undefined);
}

}  // namespace revenant::addon
