// The CUDA emulator's mma.h: nvcuda::wmma fragments of 16x16x16, bf16 operands and fp32
// accumulators. As on the device, a fragment is spread over the 32 lanes of a warp, 8
// elements each (lane l holds elements 8l..8l+7 of the row-major 16x16 tile; CUDA leaves the
// layout unspecified, which is why kernels go through store_matrix_sync). Loads and stores are each
// lane's own accesses to memory, so the race check sees them; mma_sync is a warp collective: the
// emulator gathers the tiles, computes D = A B + C with products exact in fp32 and sums in fp32 in
// k order, and scatters D back. Loads and stores imply no ordering between lanes (CUDA documents
// none): a lane reading what another stored needs __syncwarp, and the race check says so.
#pragma once
#include <cstdint>

#include "cuda_bf16.h"
#include "cuda_runtime.h"

namespace cuda_sim {
// mma_sync's collective: every lane hands its four fragments' 8 elements (a, b as bf16 bits,
// c in, d out as floats); checks alignment and leading dimension as the device requires.
void wmma_mma(const unsigned short* a, const unsigned short* b, const float* c, float* d);
void wmma_check_pointer(const void* p, unsigned ldm, unsigned element_bytes, const char* what);
}  // namespace cuda_sim

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment {
 public:
  static_assert(M == 16 && N == 16 && K == 16, "the emulator models the 16x16x16 WMMA shape only");
  static constexpr int num_elements = 8;
  T x[num_elements];
};

inline void set_element(float& x, float v) { x = v; }
inline void set_element(__nv_bfloat16& x, float v) { x = __float2bfloat16_rn(v); }

template <typename Use, typename T, typename Layout>
void fill_fragment(fragment<Use, 16, 16, 16, T, Layout>& f, float v) {
  for (int i = 0; i < 8; ++i) set_element(f.x[i], v);
}

// Element e (0..255) of a tile: row e / 16, column e % 16 of the logical matrix.
template <typename Use, typename T, typename Layout>
void load_matrix_sync(fragment<Use, 16, 16, 16, T, Layout>& f, const T* p, unsigned ldm) {
  static_assert(!std::is_same<Use, accumulator>::value, "accumulator loads take a layout");
  cuda_sim::wmma_check_pointer(p, ldm, sizeof(T), "load_matrix_sync");
  const int lane = cuda_sim::lane_id();
  for (int i = 0; i < 8; ++i) {
    const int e = lane * 8 + i, r = e / 16, c = e % 16;
    f.x[i] = std::is_same<Layout, row_major>::value ? p[r * ldm + c] : p[c * ldm + r];
  }
}

template <typename T>
void load_matrix_sync(fragment<accumulator, 16, 16, 16, T, void>& f, const T* p, unsigned ldm, layout_t layout) {
  cuda_sim::wmma_check_pointer(p, ldm, sizeof(T), "load_matrix_sync");
  const int lane = cuda_sim::lane_id();
  for (int i = 0; i < 8; ++i) {
    const int e = lane * 8 + i, r = e / 16, c = e % 16;
    f.x[i] = layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r];
  }
}

template <typename T>
void store_matrix_sync(T* p, const fragment<accumulator, 16, 16, 16, T, void>& f, unsigned ldm, layout_t layout) {
  cuda_sim::wmma_check_pointer(p, ldm, sizeof(T), "store_matrix_sync");
  const int lane = cuda_sim::lane_id();
  for (int i = 0; i < 8; ++i) {
    const int e = lane * 8 + i, r = e / 16, c = e % 16;
    (layout == mem_row_major ? p[r * ldm + c] : p[c * ldm + r]) = f.x[i];
  }
}

template <typename LA, typename LB>
void mma_sync(fragment<accumulator, 16, 16, 16, float, void>& d,
              const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, LA>& a,
              const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, LB>& b,
              const fragment<accumulator, 16, 16, 16, float, void>& c) {
  unsigned short ab[8], bb[8];
  float cf[8], df[8];
  for (int i = 0; i < 8; ++i) {
    ab[i] = a.x[i].__x;
    bb[i] = b.x[i].__x;
    cf[i] = c.x[i];
  }
  cuda_sim::wmma_mma(ab, bb, cf, df);
  for (int i = 0; i < 8; ++i) d.x[i] = df[i];
}

}  // namespace wmma
}  // namespace nvcuda
