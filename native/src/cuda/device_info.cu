// CUDA half of device_info(): asks the statically linked runtime whether a device is usable now.
// Every failure is reported as a reason string; nothing here may abort, because the addon must
// load on machines with no driver at all.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
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

// The architectures this binary carries code for, as CMake's CUDA_ARCHITECTURES with commas
// ("75-real,80-real,86-real,89-real,90"): NN-real is machine code for compute capability N.N,
// which runs on N.M for M >= N's minor; NN-virtual is PTX, which the driver compiles for any
// capability at or above it; a bare NN is both. "native" and "all" mean a build for this machine
// or for everything, and are trusted.
#ifndef REVENANT_CUDA_ARCHS
#define REVENANT_CUDA_ARCHS "native"
#endif

// Empty when code for compute capability major.minor is in the binary, otherwise why not.
std::string arch_refusal(const std::string& which, int major, int minor) {
  const std::string archs = REVENANT_CUDA_ARCHS;
  if (archs.empty() || archs.find("native") != std::string::npos || archs.find("all") != std::string::npos) return "";
  const int cc = major * 10 + minor;
  std::string machine, ptx;
  for (std::size_t at = 0; at < archs.size();) {
    const std::size_t comma = std::min(archs.find(',', at), archs.size());
    const std::string entry = archs.substr(at, comma - at);
    at = comma + 1;
    const int arch = std::atoi(entry.c_str());
    if (arch <= 0) continue;
    const bool real = entry.find("-virtual") == std::string::npos, virt = entry.find("-real") == std::string::npos;
    const std::string text = std::to_string(arch / 10) + "." + std::to_string(arch % 10);
    if (real) {
      if (cc / 10 == arch / 10 && cc >= arch) return "";
      machine += (machine.empty() ? "" : ", ") + text;
    }
    if (virt) {
      if (cc >= arch) return "";
      ptx += (ptx.empty() ? "" : ", ") + text + "+";
    }
  }
  return which + " has compute capability " + std::to_string(major) + "." + std::to_string(minor) +
         ", but this addon has code only for " + (machine.empty() ? "" : "compute capability " + machine + " (machine code)") +
         (machine.empty() || ptx.empty() ? "" : " and ") + (ptx.empty() ? "" : ptx + " (PTX)") +
         " (cudaErrorNoKernelImageForDevice at the first op): rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
         std::to_string(cc) + " on a CUDA toolkit that supports it, or use device \"cpu\"";
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
  s.reason = arch_refusal(which + " (" + s.name + ")", prop.major, prop.minor);
  if (!s.reason.empty()) return false;
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
