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
  int driver_required = 0;     // the CUDA version the addon was built against (CUDART_VERSION), encoded
                               // as driver_version is: an older driver makes CUDA unusable; 0 without CUDA
  int device = 0;              // the device the facts below describe
  std::string name;
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

// CUDA query for device `device` (0-based): usable only when the driver is at least
// driver_required, the device exists (device < device_count) and answers a memory query. Defined
// in cuda/ when compiled in, in core/ otherwise.
CudaStatus cuda_status(int device = 0);

// "13.0" for 13000: a CUDA version as cudaDriverGetVersion and CUDART_VERSION encode it.
std::string cuda_version_text(int encoded);

}  // namespace revenant
