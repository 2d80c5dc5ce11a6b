// embedding: token plus position embeddings; wpe null means no position table (CUDA mirror of
// cpu/embedding.cc).
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void embedding_forward_kernel(float* out, const int* tokens, const float* wte, const float* wpe, int B,
                                         int T, int C, int pos0) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(B) * T * C) return;
  const int c = i % C;
  const long bt = i / C;
  const int t = bt % T;
  const float te = wte[static_cast<long>(tokens[bt]) * C + c];
  out[i] = wpe ? te + wpe[static_cast<long>(pos0 + t) * C + c] : te;
}

// The backward without float atomics, so that dwte and dwpe are bit-identical run to run however
// the blocks are scheduled:
//   dwpe: one thread per (position, channel) adds the B rows of that position in batch order;
//   dwte: the B*T rows are sorted by token (stably: ties keep their row order), then in two stages
//     as the norms' weights are: stage 1 sums each token's run inside a fixed slice of kSliceRows
//     sorted rows into the partial row of the run's first sorted position; stage 2 has the thread of
//     a token's first sorted position add its runs slice by slice, in order, into dwte.

// A stable counting rank: row i goes to sorted position #{j : (tokens[j], j) < (tokens[i], i)}.
// The tokens pass through shared memory a tile at a time; every thread takes part in every barrier.
constexpr int kRankThreads = 256;
__global__ void embedding_sort_kernel(int* order, int* sorted, const int* tokens, int n) {
  __shared__ int tile[kRankThreads];
  const int i = blockIdx.x * kRankThreads + threadIdx.x;
  const int mine = i < n ? tokens[i] : 0;
  int rank = 0;
  for (int t0 = 0; t0 < n; t0 += kRankThreads) {
    if (t0 + static_cast<int>(threadIdx.x) < n) tile[threadIdx.x] = tokens[t0 + threadIdx.x];
    __syncthreads();
    const int m = min(kRankThreads, n - t0);
    for (int k = 0; k < m; ++k) rank += tile[k] < mine || (tile[k] == mine && t0 + k < i);
    __syncthreads();
  }
  if (i < n) {
    order[rank] = i;
    sorted[rank] = mine;
  }
}

// Stage 1: block (s, j), channels j*64..: each run of one token within sorted slice s, summed in
// sorted (= row) order, into the partial row of the run's first sorted position.
__global__ void embedding_backward_wte_partials_kernel(float* partial, const int* order, const int* sorted,
                                                       const float* dout, int n, int C) {
  const int c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const int p0 = blockIdx.x * kSliceRows, p1 = min(n, p0 + kSliceRows);
  float s = 0;
  int start = p0;
  for (int p = p0; p < p1; ++p) {
    s += dout[static_cast<long>(order[p]) * C + c];
    if (p + 1 == p1 || sorted[p + 1] != sorted[p]) {
      partial[static_cast<long>(start) * C + c] = s;
      s = 0;
      start = p + 1;
    }
  }
}

// Stage 2: block (p, j): when sorted position p is its token's first, its runs are the one starting
// at p and those starting at each later slice's first position while the token lasts.
__global__ void embedding_backward_wte_kernel(float* dwte, const float* partial, const int* sorted, int n, int C) {
  const int p = blockIdx.x, c = blockIdx.y * blockDim.x + threadIdx.x;
  if (c >= C || (p > 0 && sorted[p - 1] == sorted[p])) return;
  const int tok = sorted[p];
  float s = partial[static_cast<long>(p) * C + c];
  for (long q = (p / kSliceRows + 1) * static_cast<long>(kSliceRows); q < n && sorted[q] == tok; q += kSliceRows)
    s += partial[q * C + c];
  dwte[static_cast<long>(tok) * C + c] += s;
}

__global__ void embedding_backward_wpe_kernel(float* dwpe, const float* dout, int B, int T, int C, int pos0) {
  const long i = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (i >= static_cast<long>(T) * C) return;
  const long t = i / C, c = i % C;
  float s = 0;
  for (int b = 0; b < B; ++b) s += dout[(b * static_cast<long>(T) + t) * C + c];
  dwpe[(pos0 + t) * C + c] += s;
}

void embedding_forward(float* out, const int* tokens, const float* wte, const float* wpe, int B, int T, int C, int pos0) {
  const long n = static_cast<long>(B) * T * C;
  RV_LAUNCH(embedding_forward_kernel, blocks_for(n, 256), 256)(out, tokens, wte, wpe, B, T, C, pos0);
  RV_CUDA_LAUNCHED("embedding_forward");
}

void embedding_backward(float* dwte, float* dwpe, const float* dout, const int* tokens, int B, int T, int C, int pos0) {
  const char* op = "embedding_backward";
  const int n = B * T;
  if (n == 0) return;
  if (dwpe) {
    RV_LAUNCH(embedding_backward_wpe_kernel, blocks_for(static_cast<long>(T) * C, 256), 256)(dwpe, dout, B, T, C, pos0);
    RV_CUDA_LAUNCHED(op);
  }
  // Scratch: the sorted row order and tokens (n ints each), then n partial rows of C floats.
  int* order = static_cast<int*>(scratch(sizeof(int) * 2 * n + sizeof(float) * static_cast<std::size_t>(n) * C, op));
  int* sorted = order + n;
  float* partial = reinterpret_cast<float*>(sorted + n);
  RV_LAUNCH(embedding_sort_kernel, blocks_for(n, kRankThreads), kRankThreads)(order, sorted, tokens, n);
  RV_CUDA_LAUNCHED(op);
  const int cols = blocks_for(C, kSliceThreads);
  RV_LAUNCH(embedding_backward_wte_partials_kernel, dim3(slices_for(n), cols), kSliceThreads)(partial, order, sorted, dout, n, C);
  RV_CUDA_LAUNCHED(op);
  RV_LAUNCH(embedding_backward_wte_kernel, dim3(n, cols), kSliceThreads)(dwte, partial, sorted, n, C);
  RV_CUDA_LAUNCHED(op);
}

}  // namespace revenant::cuda
