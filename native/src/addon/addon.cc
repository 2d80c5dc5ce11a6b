// Node-API entry point: deviceInfo, setThreads, the PolicyModelNative class and a matmul benchmark hook.
// Converts core results to JS values; no compute lives here.
#include <napi.h>

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "addon/convert.h"
#include "addon/policy_model.h"
#include "addon/shared_memory.h"
#include "core/device_info.h"
#include "core/threads.h"
#include "cpu/gemm.h"

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
  // The driver the statically linked runtime needs (CUDART_VERSION at build time, encoded as
  // driverVersion is); cuda_status() reports CUDA unusable, naming both, when the driver is older.
  cuda.Set("driverRequired", d.cuda.driver_required);
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

// setThreads(n): the CPU backend's thread count for this process from now on (the pool is rebuilt
// at its next use). An actor process takes its share of the machine's cores this way.
Napi::Value SetThreadsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "setThreads(threads: number)");
  const double n = info[0].As<Napi::Number>().DoubleValue();
  if (n != std::floor(n) || n < 1 || n > 4096)
    throw Napi::RangeError::New(env, "setThreads: threads must be an integer in 1..4096, got " + std::to_string(n));
  revenant::set_num_threads(static_cast<int>(n));
  return env.Undefined();
}

// Benchmark hook: benchMatmul({m, n, k, transA, transB, impl: "own" | "blas", seconds}) times
// C[m,n] = op(A) op(B) with our kernel or OpenBLAS; returns {gflops, iterations} or null when the
// build has no BLAS. Synchronous on purpose: a benchmark wants the thread to itself.
Napi::Value BenchMatmulJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, "benchMatmul(options: object)");
  const Napi::Object o = info[0].As<Napi::Object>();
  const int m = revenant::addon::get_int(o, "m"), n = revenant::addon::get_int(o, "n"), k = revenant::addon::get_int(o, "k");
  const bool ta = o.Get("transA").ToBoolean(), tb = o.Get("transB").ToBoolean();
  const std::string impl = o.Get("impl").ToString().Utf8Value();
  const double budget = revenant::addon::get_number_or(o, "seconds", 0.3);
  if (m < 1 || n < 1 || k < 1 || double(m) * n + double(m) * k + double(k) * n > 1e8)
    throw Napi::RangeError::New(env, "benchMatmul: m, n, k must be >= 1 and the matrices under 1e8 floats");
  if (impl != "own" && impl != "blas") throw Napi::TypeError::New(env, "benchMatmul: impl must be \"own\" or \"blas\"");
  if (impl == "blas" && !revenant::cpu::blas_available()) return env.Null();
  std::vector<float> A(static_cast<size_t>(m) * k), B(static_cast<size_t>(k) * n), C(static_cast<size_t>(m) * n);
  for (size_t i = 0; i < A.size(); ++i) A[i] = static_cast<float>((i * 7919) % 997) / 997.0f - 0.5f;
  for (size_t i = 0; i < B.size(); ++i) B[i] = static_cast<float>((i * 104729) % 991) / 991.0f - 0.5f;
  auto run = [&] {
    if (impl == "own") revenant::cpu::sgemm_own(ta, tb, m, n, k, A.data(), ta ? m : k, B.data(), tb ? k : n, false, C.data(), n);
    else revenant::cpu::sgemm_blas(ta, tb, m, n, k, A.data(), ta ? m : k, B.data(), tb ? k : n, false, C.data(), n);
  };
  run();
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  int iters = 0;
  do {
    run();
    ++iters;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (elapsed < budget);
  Napi::Object out = Napi::Object::New(env);
  out.Set("gflops", 2.0 * m * n * k * iters / elapsed / 1e9);
  out.Set("iterations", iters);
  out.Set("kernel", impl == "own" ? revenant::cpu::own_kernel_description() : "OpenBLAS cblas_sgemm");
  return out;
}

// Benchmark hook: the core clock in GHz, measured with a chain of dependent integer adds (one
// per cycle on every x86-64 and AArch64 core), so peak-FLOP estimates use the real (turbo) clock.
// NaN on other architectures.
Napi::Value MeasureClockJs(const Napi::CallbackInfo& info) {
  constexpr long kBlocks = 2000000;
  unsigned long x = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < kBlocks; ++i) {
#if defined(__x86_64__)
    asm volatile(".rept 100\n\tadd $1, %0\n\t.endr" : "+r"(x));
#elif defined(__aarch64__)
    asm volatile(".rept 100\n\tadd %0, %0, #1\n\t.endr" : "+r"(x));
#else
    return Napi::Number::New(info.Env(), NAN);
#endif
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Napi::Number::New(info.Env(), 100.0 * kBlocks / s / 1e9 + 0.0 * static_cast<double>(x));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("measureClockGHz", Napi::Function::New(env, MeasureClockJs, "measureClockGHz"));
  exports.Set("deviceInfo", Napi::Function::New(env, DeviceInfoJs, "deviceInfo"));
  exports.Set("setThreads", Napi::Function::New(env, SetThreadsJs, "setThreads"));
  exports.Set("benchMatmul", Napi::Function::New(env, BenchMatmulJs, "benchMatmul"));
  exports.Set("PolicyModelNative", revenant::addon::PolicyModelNative::Define(env));
  exports.Set("mapShared", Napi::Function::New(env, revenant::addon::MapShared, "mapShared"));
  // 5: getState, setState and dispose return Promises and run in the model's call queue;
  // initialParams() and setThreads() added.
  // 6: mapShared() (shared-memory segments); copyParamsTo() and loadParamsFrom() on models.
  // 7: deviceInfo().cuda.driverRequired; devices "cuda:N"; a model's device and auto fallback;
  // sticky device errors end the process (__testDeviceLost()).
  exports.Set("abiVersion", Napi::Number::New(env, 7));
  return exports;
}

}  // namespace

NODE_API_MODULE(revenant, Init)
