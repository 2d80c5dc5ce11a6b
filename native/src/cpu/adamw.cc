// adamw: Adam with decoupled weight decay (Loshchilov & Hutter), bias-corrected moments.
// Also the deterministic sum of squares used for the global gradient norm.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/ops.h"

namespace revenant::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  const float* scale) {
  const float grad_scale = scale ? *scale : 1.0f;
  const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
  for_ranges(n, double(n) * 12, [&](std::size_t begin, std::size_t end) {
    float* __restrict p = params;  // restrict locals: lets the compiler vectorise the loop
    const float* __restrict gr = grads;
    float* __restrict mm = m;
    float* __restrict vv = v;
    for (std::size_t i = begin; i < end; ++i) {
      const float g = gr[i] * grad_scale;
      mm[i] = beta1 * mm[i] + (1.0f - beta1) * g;
      vv[i] = beta2 * vv[i] + (1.0f - beta2) * g * g;
      const float mhat = mm[i] / bc1;
      const float vhat = vv[i] / bc2;
      p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * p[i]);
    }
  });
}

// One block's sum in 8 independent double lanes (vectorised; no chain of dependent adds), then
// the lanes in order.
static double block_sum_squares(const float* x, std::size_t n) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) lane[j] += static_cast<double>(x[i + j]) * x[i + j];
  for (; i < n; ++i) lane[i % 8] += static_cast<double>(x[i]) * x[i];
  double s = 0;
  for (double l : lane) s += l;
  return s;
}

// Fixed blocks summed in parallel, then the block sums in order: the result depends on n alone,
// never on the thread count. It runs over every weight several times per step (the gradient
// norm, the finite-update probe), where a serial chain of double adds cost as much as AdamW.
double sum_squares(const float* x, std::size_t n) {
  constexpr std::size_t kBlock = std::size_t{1} << 16;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks <= 1) return block_sum_squares(x, n);
  std::vector<double> partial(blocks);
  for_ranges(blocks, double(n) * 2, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) partial[b] = block_sum_squares(x + b * kBlock, std::min(kBlock, n - b * kBlock));
  });
  double s = 0;
  for (double p : partial) s += p;
  return s;
}

void sum_squares_accumulate(double* acc, const float* x, std::size_t n) { *acc += sum_squares(x, n); }

void clip_scale(float* scale, const double* sum_squares, float max_norm) {
  const double norm = std::sqrt(*sum_squares);
  *scale = max_norm > 0 && norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
}

}  // namespace revenant::cpu
