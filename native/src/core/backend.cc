// Backend selection by name: "cpu", "cuda", "cuda:N", or "auto" (cuda when usable, else cpu).
#include "core/backend.h"

#include <cctype>

#include "core/device_info.h"
#include "core/error.h"

namespace revenant {
namespace {

constexpr const char* kAllowed = "\"auto\", \"cpu\", \"cuda\" or \"cuda:N\" (N a device index: 0, 1, ...)";

// The device index of "cuda" (0) or "cuda:N"; -1 for anything else. N is plain decimal digits, no
// sign or spaces, below 2^31.
int parse_cuda_index(const std::string& device) {
  if (device == "cuda") return 0;
  const std::string prefix = "cuda:";
  if (device.compare(0, prefix.size(), prefix) != 0) return -1;
  const std::string digits = device.substr(prefix.size());
  if (digits.empty() || digits.size() > 9) return -1;
  for (const char c : digits)
    if (!std::isdigit(static_cast<unsigned char>(c))) return -1;
  if (digits.size() > 1 && digits[0] == '0') return -1;  // one spelling per device
  return std::stoi(digits);
}

BackendChoice on_cuda(int index) {
#ifdef REVENANT_HAVE_CUDA
  return {make_cuda_backend(index), "cuda:" + std::to_string(index), ""};
#else
  (void)index;
  RV_FAIL("make_backend", "CUDA backend not compiled in");  // unreachable: cuda_status() says not usable
#endif
}

}  // namespace

BackendChoice choose_backend(const std::string& device) {
  if (device == "cpu") return {make_cpu_backend(), "cpu", ""};
  if (device == "auto") {
    const CudaStatus cuda = cuda_status(0);
    if (cuda.usable) return on_cuda(0);
    return {make_cpu_backend(), "cpu", cuda.reason};
  }
  const int index = parse_cuda_index(device);
  if (index < 0) RV_FAIL("make_backend", std::string("device must be ") + kAllowed + ", got \"" + device + "\"");
  const CudaStatus cuda = cuda_status(index);
  if (!cuda.usable)
    RV_FAIL("make_backend", "device \"" + device + "\" requested but CUDA is not usable: " + cuda.reason +
                                " (use device \"auto\" or \"cpu\" to run on the CPU)");
  return on_cuda(index);
}

std::unique_ptr<Backend> make_backend(const std::string& device) { return choose_backend(device).backend; }

std::size_t Backend::attention_scratch_floats(int B, int T, int /*C*/, int NH) {
  return static_cast<std::size_t>(B) * NH * T * static_cast<std::size_t>(T);
}

void Backend::test_device_lost() {
  throw DeviceLostError("test_device_lost", __FILE__, __LINE__,
                        "cudaErrorIllegalAddress: an illegal memory access was encountered (simulated on the " + name() +
                            " backend by the test hook)");
}

}  // namespace revenant
