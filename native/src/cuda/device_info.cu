// CUDA half of device_info(): asks the statically linked runtime whether a device is usable now.
// Every failure is reported as a reason string; nothing here may abort, because the addon must
// load on machines with no driver at all.
#include <cuda_runtime.h>

#include <string>

#include "core/device_info.h"

namespace revenant {
namespace {

std::string cuda_error_text(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

// The statically linked runtime needs a driver at least as new as the toolkit it came from; an
// older one fails every call with cudaErrorInsufficientDriver, which does not say what to install.
std::string driver_refusal(const CudaStatus& s) {
  if (s.driver_version == 0 || s.driver_version >= s.driver_required) return "";
  return "the installed CUDA driver supports CUDA " + cuda_version_text(s.driver_version) + " (" +
         std::to_string(s.driver_version) + ") but this addon was built with CUDA " + cuda_version_text(s.driver_required) +
         " (" + std::to_string(s.driver_required) + ") and needs a driver at least that new: update the driver, or rebuild " +
         "the addon with a CUDA toolkit no newer than " + cuda_version_text(s.driver_version);
}

// Fills the facts of device `s.device`; false (with the reason) when it cannot be used.
bool probe_device(CudaStatus& s) {
  const std::string which = "device " + std::to_string(s.device);
  cudaDeviceProp prop{};
  cudaError_t err = cudaGetDeviceProperties(&prop, s.device);
  if (err != cudaSuccess) {
    s.reason = which + " unreadable: " + cuda_error_text(err);
    cudaGetLastError();
    return false;
  }
  s.name = prop.name;
  s.total_memory = prop.totalGlobalMem;
  s.compute_major = prop.major;
  s.compute_minor = prop.minor;
  size_t free_b = 0, total_b = 0;
  err = cudaSetDevice(s.device);
  if (err == cudaSuccess) err = cudaMemGetInfo(&free_b, &total_b);
  if (err != cudaSuccess) {
    s.reason = which + " present but not usable: " + cuda_error_text(err);
    cudaGetLastError();
    return false;
  }
  s.free_memory = free_b;
  return true;
}

}  // namespace

CudaStatus cuda_status(int device) {
  CudaStatus s;
  s.compiled = true;
  s.device = device;
  s.driver_required = CUDART_VERSION;
  cudaRuntimeGetVersion(&s.runtime_version);
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess) s.driver_version = 0;
  s.reason = driver_refusal(s);
  if (!s.reason.empty()) return s;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    // Without a driver the runtime says "driver version is insufficient", which reads as "too old".
    const std::string driver = s.driver_version == 0 ? "no CUDA driver is installed (libcuda not found); " : "";
    s.reason = "no device: " + driver + cuda_error_text(err);
    cudaGetLastError();  // clear the error so later queries start clean
    return s;
  }
  s.device_count = count;
  if (count == 0) {
    s.reason = "no device: the driver reports 0 CUDA devices";
    return s;
  }
  if (device < 0 || device >= count) {
    s.reason = "device index " + std::to_string(device) + " is not below the device count " + std::to_string(count) +
               " (allowed: cuda:0 to cuda:" + std::to_string(count - 1) + ")";
    return s;
  }
  s.usable = probe_device(s);
  return s;
}

}  // namespace revenant
