// sampling_filter: scaled = logits / temperature and filtered = scaled cut by top-k then top-p
// (CUDA mirror of cpu/sampling_filter.cc). One block per row. The k-th largest value and the top-p
// boundary are found by bisection over the 32-bit keys that order floats, each step one block
// count (or mass) in a fixed tree order; ids tied at the top-p boundary are kept in id order by
// one thread, as the reference keeps them. Masses are summed in double, as the reference sums them.
#include <cmath>
#include <cstdint>

#include "cuda/ops.cuh"

namespace revenant::cuda {
namespace {

constexpr int kThreads = 256;

// A key whose unsigned order is the float order (-inf lowest).
__device__ uint32_t order_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ double block_sum(double v, double* shared) {
  shared[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shared[threadIdx.x] += shared[threadIdx.x + s];
    __syncthreads();
  }
  const double out = shared[0];
  __syncthreads();
  return out;
}

// Sum over the row of f(key(x_j), x_j), for a bisection step.
template <typename Fn>
__device__ double row_sum(const float* x, int V, double* shared, Fn f) {
  double acc = 0;
  for (int j = threadIdx.x; j < V; j += blockDim.x) acc += f(order_key(x[j]), x[j]);
  return block_sum(acc, shared);
}

// The largest key K with total(K) >= target, total non-increasing in K.
template <typename Total>
__device__ uint32_t bisect(Total total, double target) {
  uint32_t lo = 0, hi = 0xFFFFFFFFu;
  while (lo < hi) {
    const uint32_t mid = lo + static_cast<uint32_t>((static_cast<uint64_t>(hi) - lo + 1) / 2);
    if (total(mid) >= target) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

__global__ void sampling_filter_kernel(float* scaled, float* filtered, const float* logits, int V, float inv_temp,
                                       int top_k, float top_p, bool use_k, bool use_p) {
  __shared__ double shared[kThreads];
  const long row = static_cast<long>(blockIdx.x) * V;
  const float* x = logits + row;
  float* s = scaled + row;
  float* f = filtered + row;
  // Each thread reads and writes only its own ids j (threadIdx.x + k * blockDim.x) until the tie
  // loop at the end, so the passes over the row need no barrier of their own: block_sum's order them.
  for (int j = threadIdx.x; j < V; j += blockDim.x) s[j] = f[j] = x[j] * inv_temp;
  if (use_k) {
    const uint32_t K = bisect([&](uint32_t k) { return row_sum(f, V, shared, [&](uint32_t key, float) { return key >= k ? 1.0 : 0.0; }); },
                              double(top_k));
    for (int j = threadIdx.x; j < V; j += blockDim.x)
      if (order_key(f[j]) < K) f[j] = -INFINITY;
  }
  if (!use_p) return;
  float m = -INFINITY;
  for (int j = threadIdx.x; j < V; j += blockDim.x) m = fmaxf(m, f[j]);
  // The max through the double sum's shared memory: a float max is exact in either.
  shared[threadIdx.x] = m;
  __syncthreads();
  for (int st = blockDim.x / 2; st > 0; st >>= 1) {
    if (threadIdx.x < st) shared[threadIdx.x] = fmax(shared[threadIdx.x], shared[threadIdx.x + st]);
    __syncthreads();
  }
  const double maxv = shared[0];
  __syncthreads();
  const auto mass = [&](uint32_t k, bool strictly) {
    return row_sum(f, V, shared, [&](uint32_t key, float v) { return (strictly ? key > k : key >= k) ? exp(double(v) - maxv) : 0.0; });
  };
  const double target = double(top_p) * row_sum(f, V, shared, [&](uint32_t, float v) { return exp(double(v) - maxv); });
  const uint32_t K = bisect([&](uint32_t k) { return mass(k, false); }, target);
  const double above = mass(K, true);
  for (int j = threadIdx.x; j < V; j += blockDim.x)
    if (order_key(f[j]) < K) f[j] = -INFINITY;
  // Thread 0 reads every id below, with no barrier after the cut above: it looks only at ids whose
  // key is K, which the cut leaves alone (K is above -inf's key: the row's smallest finite key
  // already has mass >= target), and writes only those.
  if (threadIdx.x == 0) {  // ties at the boundary, in id order, while the mass before them is below top_p
    double before = above;
    for (int j = 0; j < V; ++j) {
      if (order_key(f[j]) != K) continue;
      if (before >= target) f[j] = -INFINITY;
      else before += exp(double(f[j]) - maxv);
    }
  }
}

}  // namespace

void sampling_filter_forward(float* scaled, float* filtered, const float* logits, int N, int V, float temperature,
                             int top_k, float top_p) {
  const bool greedy = temperature <= 0.0f;
  const float inv_temp = greedy ? 1.0f : 1.0f / temperature;
  const bool use_k = !greedy && top_k > 0 && top_k < V, use_p = !greedy && top_p < 1.0f;
  RV_LAUNCH(sampling_filter_kernel, N, kThreads)(scaled, filtered, logits, V, inv_temp, top_k, top_p, use_k, use_p);
  RV_CUDA_LAUNCHED("sampling_filter_forward");
}

}  // namespace revenant::cuda
