// lm_head: the LM head fused with its log-softmax (CUDA mirror of cpu/lm_head.cc). The vocabulary
// is walked in chunks: each chunk's logits are one product into scratch (the fp32 GEMM of
// matmul.cu), folded into each row's running max, sum and entropy sum by one block per row, then
// dropped; the backward recomputes each chunk's logits and turns them into their gradient in place
// before the product's backward. Block sums reduce in a fixed tree order (no atomics), so results
// are run-to-run deterministic. A bfloat16 head (w16) is widened chunk by chunk into `wide` before
// each chunk's product, as on the CPU.
#include <cmath>

#include "cuda/ops.cuh"

namespace revenant::cuda {
namespace {

constexpr int kThreads = 256;

// Sum (or max) over the block, in a fixed tree order; every thread gets the result.
template <bool kMax>
__device__ float block_reduce(float v, float* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] = kMax ? fmaxf(shared[threadIdx.x], shared[threadIdx.x + s]) : shared[threadIdx.x] + shared[threadIdx.x + s];
    __syncthreads();
  }
  const float out = shared[0];
  __syncthreads();
  return out;
}

__global__ void lm_head_init_kernel(float* lp, float* lse, float* s, float* e, int N) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  lse[n] = -INFINITY;
  lp[n] = s[n] = e[n] = 0.0f;
}

// One block per row: folds the row's chunk of logits (vc of them, ids v0..) into (m = lse, s, e).
__global__ void lm_head_fold_kernel(float* lp, float* lse, float* s, float* e, const float* logits, const int* targets,
                                    int vc, int v0, float scale, bool want_e) {
  __shared__ float shared[kThreads];
  const int n = blockIdx.x;
  const float* x = logits + static_cast<long>(n) * vc;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < vc; j += blockDim.x) m = fmaxf(m, x[j] * scale);
  const float m_old = lse[n];
  const float m_new = fmaxf(m_old, block_reduce<true>(m, shared));
  float ps = 0, pe = 0;
  for (int j = threadIdx.x; j < vc; j += blockDim.x) {
    const float z = x[j] * scale;
    const float p = expf(z - m_new);
    ps += p;
    pe += p * z;
  }
  const float cs = block_reduce<false>(ps, shared);
  const float ce = want_e ? block_reduce<false>(pe, shared) : 0.0f;
  if (threadIdx.x == 0) {
    const float rescale = expf(m_old - m_new);
    s[n] = s[n] * rescale + cs;
    if (want_e) e[n] = e[n] * rescale + ce;
    lse[n] = m_new;
    const int t = targets[n];
    if (t >= v0 && t < v0 + vc) lp[n] = x[t - v0] * scale;
  }
}

__global__ void lm_head_finish_kernel(float* lp, float* entropy, float* lse, const float* s, const float* e,
                                      const int* targets, int N) {
  const int n = blockIdx.x * blockDim.x + threadIdx.x;
  if (n >= N) return;
  const float L = lse[n] + logf(s[n]);
  lse[n] = L;
  lp[n] = targets[n] >= 0 ? lp[n] - L : 0.0f;
  if (entropy) entropy[n] = L - e[n] / s[n];
}

// The chunk's logits -> their gradient, in place, one thread per element.
__global__ void lm_head_grad_kernel(float* g, const int* targets, const float* lse, const float* entropy, const float* dlp,
                                    const float* dent, int N, int vc, int v0, float scale) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(N) * vc) return;
  const int n = static_cast<int>(i / vc), j = static_cast<int>(i % vc);
  const int t = targets[n];
  const float gl = t >= 0 ? dlp[n] : 0.0f;
  const float logp = g[i] * scale - lse[n];
  const float p = expf(logp);
  float d = -gl * p - dent[n] * p * (logp + entropy[n]);
  if (t == v0 + j) d += gl;
  g[i] = scale * d;
}

// Rows v0..v0+vc of the head as float32: w's own, or w16's widened into wide.
const float* chunk_rows(const float* w, const uint16_t* w16, float* wide, int v0, int vc, int C) {
  const long at = static_cast<long>(v0) * C;
  if (!w16) return w + at;
  bf16_widen(wide, w16 + at, static_cast<std::size_t>(vc) * C);
  return wide;
}

}  // namespace

void lm_head_forward(float* lp, float* entropy, float* lse, float* scratch, const float* inp, const float* w,
                     const uint16_t* w16, float* wide, const int* targets, int N, int C, int V, int chunk, float inv_temp) {
  float* s = scratch + static_cast<long>(N) * chunk;
  float* e = s + N;
  RV_LAUNCH(lm_head_init_kernel, blocks_for(N, 128), 128)(lp, lse, s, e, N);
  RV_CUDA_LAUNCHED("lm_head_forward");
  for (int v0 = 0; v0 < V; v0 += chunk) {
    const int vc = V - v0 < chunk ? V - v0 : chunk;
    matmul_forward(scratch, inp, chunk_rows(w, w16, wide, v0, vc, C), nullptr, N, C, vc);
    RV_LAUNCH(lm_head_fold_kernel, N, kThreads)(lp, lse, s, e, scratch, targets, vc, v0, inv_temp, entropy != nullptr);
    RV_CUDA_LAUNCHED("lm_head_forward");
  }
  RV_LAUNCH(lm_head_finish_kernel, blocks_for(N, 128), 128)(lp, entropy, lse, s, e, targets, N);
  RV_CUDA_LAUNCHED("lm_head_forward");
}

void lm_head_backward(float* dinp, float* dw, float* scratch, const float* inp, const float* w, const uint16_t* w16,
                      float* wide, const int* targets, const float* lse, const float* entropy, const float* dlp,
                      const float* dent, int N, int C, int V, int chunk, float inv_temp) {
  for (int v0 = 0; v0 < V; v0 += chunk) {
    const int vc = V - v0 < chunk ? V - v0 : chunk;
    const float* wc = chunk_rows(w, w16, wide, v0, vc, C);
    matmul_forward(scratch, inp, wc, nullptr, N, C, vc);
    RV_LAUNCH(lm_head_grad_kernel, blocks_for(static_cast<long>(N) * vc, 256), 256)(scratch, targets, lse, entropy, dlp, dent, N,
                                                                             vc, v0, inv_temp);
    RV_CUDA_LAUNCHED("lm_head_backward");
    matmul_backward(dinp, dw ? dw + static_cast<long>(v0) * C : nullptr, nullptr, scratch, inp, wc, N, C, vc);  // dw null: frozen
  }
}

}  // namespace revenant::cuda
