// Node-API entry point: converts core results to JS values. No compute lives here.
#include <napi.h>

#include "core/device_info.h"

namespace {

Napi::Value DeviceInfoJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const revenant::DeviceInfo d = revenant::device_info();

  Napi::Array backends = Napi::Array::New(env, d.backends.size());
  for (size_t i = 0; i < d.backends.size(); ++i) backends[i] = d.backends[i];

  Napi::Object cuda = Napi::Object::New(env);
  cuda.Set("compiled", d.cuda.compiled);
  cuda.Set("usable", d.cuda.usable);
  cuda.Set("reason", d.cuda.usable ? env.Null() : Napi::String::New(env, d.cuda.reason));
  cuda.Set("deviceCount", d.cuda.device_count);
  cuda.Set("driverVersion", d.cuda.driver_version);
  cuda.Set("runtimeVersion", d.cuda.runtime_version);
  if (d.cuda.usable) {
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("name", d.cuda.name);
    dev.Set("totalMemory", static_cast<double>(d.cuda.total_memory));
    dev.Set("freeMemory", static_cast<double>(d.cuda.free_memory));
    dev.Set("computeCapability",
            std::to_string(d.cuda.compute_major) + "." + std::to_string(d.cuda.compute_minor));
    cuda.Set("device", dev);
  } else {
    cuda.Set("device", env.Null());
  }

  Napi::Object blas = Napi::Object::New(env);
  blas.Set("linked", d.blas.linked);
  blas.Set("vendor", d.blas.vendor);
  blas.Set("config", d.blas.config);
  blas.Set("threads", d.blas.threads);

  Napi::Object out = Napi::Object::New(env);
  out.Set("backends", backends);
  out.Set("cuda", cuda);
  out.Set("blas", blas);
  out.Set("threads", d.threads);
  out.Set("hardwareThreads", d.hardware_threads);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfoJs, "deviceInfo"));
  exports.Set("abiVersion", Napi::Number::New(env, 1));
  return exports;
}

}  // namespace

NODE_API_MODULE(revenant, Init)
