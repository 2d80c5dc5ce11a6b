#include "core/device_info.h"

#include "core/threads.h"
#include "cpu/gemm.h"

#ifdef REVENANT_HAVE_BLAS
#include <cblas.h>
#endif

namespace revenant {

#ifndef REVENANT_HAVE_CUDA
CudaStatus cuda_status(int device) {
  CudaStatus s;
  s.device = device;
  s.compiled = false;
  s.usable = false;
  s.reason = "CUDA backend not compiled in (the addon was built where no GPU or no nvcc was found; REVENANT_CUDA=1 bun install compiles it)";
  return s;
}
#endif

std::string cuda_version_text(int encoded) {
  return std::to_string(encoded / 1000) + "." + std::to_string(encoded % 1000 / 10);
}

static BlasStatus blas_status() {
  BlasStatus b;
#ifdef REVENANT_HAVE_BLAS
  b.linked = true;
  b.vendor = "OpenBLAS";
  const char* cfg = openblas_get_config();
  b.config = cfg ? cfg : "";
  cpu::blas_single_threaded();  // the threads reported are the ones products will use
  b.threads = openblas_get_num_threads();
#else
  b.linked = false;
  b.vendor = "none";
  b.config = "built-in blocked kernels (no BLAS found at build time)";
  b.threads = 0;
#endif
  return b;
}

DeviceInfo device_info() {
  DeviceInfo info;
  info.backends.push_back("cpu");
  info.cuda = cuda_status();
  if (info.cuda.compiled) info.backends.push_back("cuda");
  info.blas = blas_status();
  info.threads = num_threads();
  info.hardware_threads = hardware_threads();
  return info;
}

}  // namespace revenant
