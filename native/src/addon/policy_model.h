// The PolicyModelNative JavaScript class (see policy_model.cc).
#pragma once
#include <napi.h>

#include <memory>

namespace revenant {
class Model;
}

namespace revenant::addon {

class PolicyModelNative : public Napi::ObjectWrap<PolicyModelNative> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit PolicyModelNative(const Napi::CallbackInfo& info);
  ~PolicyModelNative() override;

 private:
  struct Impl;
  Model& model(Napi::Env env);
  Napi::Value Info(const Napi::CallbackInfo& info);
  Napi::Value Generate(const Napi::CallbackInfo& info);
  Napi::Value Logprobs(const Napi::CallbackInfo& info);
  Napi::Value Values(const Napi::CallbackInfo& info);
  Napi::Value PerToken(const Napi::CallbackInfo& info, bool values);
  Napi::Value PolicyStep(const Napi::CallbackInfo& info);
  Napi::Value ValueStep(const Napi::CallbackInfo& info);
  Napi::Value GetState(const Napi::CallbackInfo& info);
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value CopyParamsTo(const Napi::CallbackInfo& info);
  Napi::Value LoadParamsFrom(const Napi::CallbackInfo& info);
  Napi::Value ComputeFrom(const Napi::CallbackInfo& info);
  Napi::Value CopyBaseTo(const Napi::CallbackInfo& info);
  const char* trained_what() const;
  Napi::Value LoadBaseFrom(const Napi::CallbackInfo& info);
  Napi::Value InitialLoraParams(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value InitialParams(const Napi::CallbackInfo& info);
  Napi::Value TestDeviceLost(const Napi::CallbackInfo& info);
  std::unique_ptr<Impl> impl_;
  // The array computeFrom last lent the model: held so its memory (a mapping) outlives the calls.
  Napi::ObjectReference lent_;
};

}  // namespace revenant::addon
