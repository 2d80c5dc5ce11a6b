#include "core/threads.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace revenant {

int hardware_threads() {
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : static_cast<int>(n);
}

static int read_num_threads() {
  const char* env = std::getenv("REVENANT_NUM_THREADS");
  if (env == nullptr || *env == '\0') return hardware_threads();
  char* end = nullptr;
  long v = std::strtol(env, &end, 10);
  if (*end != '\0' || v < 1 || v > 4096) {
    std::fprintf(stderr,
                 "revenant: REVENANT_NUM_THREADS=%s is not an integer in 1..4096; using %d\n", env,
                 hardware_threads());
    return hardware_threads();
  }
  return static_cast<int>(v);
}

int num_threads() {
  static const int n = read_num_threads();
  return n;
}

}  // namespace revenant
