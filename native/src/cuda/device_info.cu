// CUDA half of device_info(): asks the statically linked runtime whether a device is usable now.
// Every failure is reported as a reason string; nothing here may abort, because the addon must
// load on machines with no driver at all.
#include <cuda_runtime.h>

#include <string>

#include "core/device_info.h"

namespace revenant {

CudaStatus cuda_status() {
  CudaStatus s;
  s.compiled = true;
  cudaRuntimeGetVersion(&s.runtime_version);
  if (cudaDriverGetVersion(&s.driver_version) != cudaSuccess) s.driver_version = 0;
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    s.reason = std::string("no device: ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
    cudaGetLastError();  // clear the sticky error so later queries start clean
    return s;
  }
  s.device_count = count;
  if (count == 0) {
    s.reason = "no device: the driver reports 0 CUDA devices";
    return s;
  }
  cudaDeviceProp prop{};
  err = cudaGetDeviceProperties(&prop, 0);
  if (err != cudaSuccess) {
    s.reason = std::string("device 0 unreadable: ") + cudaGetErrorString(err);
    cudaGetLastError();
    return s;
  }
  s.name = prop.name;
  s.total_memory = prop.totalGlobalMem;
  s.compute_major = prop.major;
  s.compute_minor = prop.minor;
  size_t free_b = 0, total_b = 0;
  err = cudaSetDevice(0);
  if (err == cudaSuccess) err = cudaMemGetInfo(&free_b, &total_b);
  if (err != cudaSuccess) {
    s.reason = std::string("device 0 present but not usable: ") + cudaGetErrorString(err);
    cudaGetLastError();
    return s;
  }
  s.free_memory = free_b;
  s.usable = true;
  return s;
}

}  // namespace revenant
