// What the native library can do on this machine: compiled backends, CUDA usability, BLAS, threads.
// Plain C++ so the native test executable and the Node-API addon report the same facts.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace revenant {

struct CudaStatus {
  bool compiled = false;       // CUDA sources were built into this binary
  bool usable = false;         // a device can be used right now
  std::string reason;          // why not, when !usable
  int device_count = 0;
  int driver_version = 0;      // e.g. 13000; 0 when no driver is present
  int runtime_version = 0;     // the statically linked CUDA runtime
  std::string name;            // device 0
  std::size_t total_memory = 0;
  std::size_t free_memory = 0;
  int compute_major = 0;
  int compute_minor = 0;
};

struct BlasStatus {
  bool linked = false;
  std::string vendor;          // "OpenBLAS" or "none (built-in kernels)"
  std::string config;          // the library's own build description
  int threads = 0;
};

struct DeviceInfo {
  std::vector<std::string> backends;  // compiled backends, "cpu" always first
  CudaStatus cuda;
  BlasStatus blas;
  int threads = 1;                    // threads our CPU kernels use
  int hardware_threads = 1;
};

DeviceInfo device_info();

// CUDA query; defined in cuda/ when compiled in, in core/ otherwise.
CudaStatus cuda_status();

}  // namespace revenant
