// Chunked parallel loops for the CPU ops. Each chunk owns a disjoint set of outputs and runs its
// inner reductions in a fixed order, so the result never depends on the number of chunks.
#include <algorithm>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace revenant::cpu {

void parallel_chunks(int n, double work, void (*fn)(int, int, void*), void* ctx) {
  // Below ~100k flops waking the pool costs more than it saves.
  const int threads = pool_threads();
  if (n <= 1 || threads == 1 || work < 1e5) {
    if (n > 0) fn(0, n, ctx);
    return;
  }
  const int parts = std::min(n, threads * 4);
  parallel_for(parts, [&](int p) {
    const int begin = static_cast<int>(static_cast<long long>(p) * n / parts);
    const int end = static_cast<int>(static_cast<long long>(p + 1) * n / parts);
    if (begin < end) fn(begin, end, ctx);
  });
}

}  // namespace revenant::cpu
