// CPU reference ops: the readable specification every other backend is checked against.
// Templated on the element type: float is what the model runs, double is what the gradient
// checks use as ground truth. One file per op (<op>.cc), same names as native/src/cuda/<op>.cu.
// Backward ops accumulate (+=) into gradients, as documented in core/op_list.h.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/op_list.h"

namespace revenant::cpu {

// One declaration per entry of core/op_list.h: a template on the element type F for the ops both
// float and double run, plain float for the rest. Attention's packed qkv rows are
// [q: NH heads | k: NKV heads | v: NKV heads], each head hs = C / NH wide (row stride
// C + 2 * NKV * hs).
#define REVENANT_CPU_DECLARE_TEMPLATE(ret, name, params, args) \
  template <typename F>                                        \
  ret name params;
#define REVENANT_CPU_DECLARE(ret, name, params, args) ret name params;
REVENANT_TEMPLATED_OPS(REVENANT_CPU_DECLARE_TEMPLATE)
REVENANT_FLOAT_OPS(REVENANT_CPU_DECLARE)
#undef REVENANT_CPU_DECLARE_TEMPLATE
#undef REVENANT_CPU_DECLARE

// Part p of [0, n) cut into `parts` contiguous ranges whose sizes differ by at most one. In 64
// bits and without an n * p product, so any n splits exactly.
struct Range {
  std::size_t begin, end;
};
Range chunk_range(std::size_t n, int parts, int p);

// Splits [0, n) into about `parts` contiguous chunks and runs fn(begin, end) on the pool when the
// work is worth it (work = rough flop count of the whole loop).
void parallel_chunks(int n, double work, void (*)(int, int, void*), void* ctx);
// The same over a 64-bit count (flat parameter arrays can pass 2^31 elements).
void parallel_ranges(std::size_t n, double work, void (*)(std::size_t, std::size_t, void*), void* ctx);

template <typename F>
void for_chunks(int n, double work, F&& fn) {
  parallel_chunks(
      n, work, [](int b, int e, void* c) { (*static_cast<F*>(c))(b, e); }, &fn);
}

template <typename F>
void for_ranges(std::size_t n, double work, F&& fn) {
  parallel_ranges(
      n, work, [](std::size_t b, std::size_t e, void* c) { (*static_cast<F*>(c))(b, e); }, &fn);
}

}  // namespace revenant::cpu
