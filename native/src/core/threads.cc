#include "core/threads.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/error.h"

namespace revenant {
namespace {

constexpr int kMaxThreads = 4096;

// 0: nothing set by the process; the environment or the hardware decides.
std::atomic<int> g_requested{0};

int read_env_threads() {
  const char* env = std::getenv("REVENANT_NUM_THREADS");
  if (env == nullptr || *env == '\0') return hardware_threads();
  char* end = nullptr;
  long v = std::strtol(env, &end, 10);
  if (*end != '\0' || v < 1 || v > kMaxThreads) {
    std::fprintf(stderr,
                 "revenant: REVENANT_NUM_THREADS=%s is not an integer in 1..%d; using %d\n", env,
                 kMaxThreads, hardware_threads());
    return hardware_threads();
  }
  return static_cast<int>(v);
}

}  // namespace

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

int num_threads() {
  static const int from_env = read_env_threads();
  const int requested = g_requested.load();
  return requested > 0 ? requested : from_env;
}

void set_num_threads(int n) {
  RV_CHECK(n >= 1 && n <= kMaxThreads, "setThreads",
           "threads must be an integer in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(n));
  g_requested.store(n);
}

}  // namespace revenant
