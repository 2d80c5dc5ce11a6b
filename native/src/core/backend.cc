// Backend selection by name: "cpu", "cuda", or "auto" (cuda when usable).
#include "core/backend.h"

#include "core/device_info.h"
#include "core/error.h"

namespace revenant {

std::unique_ptr<Backend> make_backend(const std::string& device) {
  if (device == "cpu") return make_cpu_backend();
  if (device != "auto" && device != "cuda")
    RV_FAIL("make_backend", "device must be \"auto\", \"cpu\" or \"cuda\", got \"" + device + "\"");
  const CudaStatus cuda = cuda_status();
  if (cuda.usable) {
#ifdef REVENANT_HAVE_CUDA
    return make_cuda_backend();
#endif
  }
  if (device == "cuda")
    RV_FAIL("make_backend", "device \"cuda\" requested but CUDA is not usable: " + cuda.reason +
                                " (use device \"auto\" or \"cpu\" to run on the CPU)");
  return make_cpu_backend();
}

}  // namespace revenant
