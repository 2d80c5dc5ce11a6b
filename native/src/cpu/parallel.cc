// Chunked parallel loops for the CPU ops. Each chunk owns a disjoint set of outputs and runs its
// inner reductions in a fixed order, so the result never depends on the number of chunks.
#include <algorithm>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace revenant::cpu {

Range chunk_range(std::size_t n, int parts, int p) {
  const std::size_t q = n / parts, r = n % parts, up = static_cast<std::size_t>(p);
  const std::size_t begin = q * up + std::min(up, r);
  return {begin, begin + q + (up < r ? 1 : 0)};
}

void parallel_ranges(std::size_t n, double work, void (*fn)(std::size_t, std::size_t, void*), void* ctx) {
  // Below ~100k flops waking the pool costs more than it saves.
  const int threads = pool_threads();
  if (n <= 1 || threads == 1 || work < 1e5) {
    if (n > 0) fn(0, n, ctx);
    return;
  }
  const int parts = static_cast<int>(std::min<std::size_t>(n, static_cast<std::size_t>(threads) * 4));
  parallel_for(parts, [&](int p) {
    const Range r = chunk_range(n, parts, p);
    if (r.begin < r.end) fn(r.begin, r.end, ctx);
  });
}

void parallel_chunks(int n, double work, void (*fn)(int, int, void*), void* ctx) {
  if (n <= 0) return;
  struct Ctx {
    void (*fn)(int, int, void*);
    void* ctx;
  } c{fn, ctx};
  parallel_ranges(
      static_cast<std::size_t>(n), work,
      [](std::size_t b, std::size_t e, void* p) {
        const Ctx& c = *static_cast<Ctx*>(p);
        c.fn(static_cast<int>(b), static_cast<int>(e), c.ctx);
      },
      &c);
}

}  // namespace revenant::cpu
