// adamw: Adam with decoupled weight decay (Loshchilov & Hutter), bias-corrected moments.
// Also the deterministic sum of squares used for the global gradient norm.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/adamw_element.h"
#include "cpu/ops.h"

namespace revenant::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  const float* scale) {
  const float grad_scale = scale ? *scale : 1.0f;
  const float bc1 = adamw_bias_correction(beta1, step);
  const float bc2 = adamw_bias_correction(beta2, step);
  for_ranges(n, double(n) * 12, [&](std::size_t begin, std::size_t end) {
    float* __restrict p = params;  // restrict locals: lets the compiler vectorise the loop
    const float* __restrict gr = grads;
    float* __restrict mm = m;
    float* __restrict vv = v;
    // The scalars as locals too: read through the lambda's references, each store to p, mm or vv
    // might change them, and the loop stayed scalar (a division and a square root per weight at a
    // time, 6% of a 20M-parameter policy step).
    const float gs = grad_scale, lr_ = lr, b1 = beta1, b2 = beta2, eps_ = eps, wd = weight_decay, c1 = bc1, c2 = bc2;
    for (std::size_t i = begin; i < end; ++i) {
      const AdamwElement e = adamw_element(p[i], gr[i] * gs, mm[i], vv[i], lr_, b1, b2, eps_, wd, c1, c2);
      p[i] = e.p;
      mm[i] = e.m;
      vv[i] = e.v;
    }
  });
}

// One block's verdict: 0 when every updated weight and moment is finite, else NaN (x * 0 is NaN
// exactly when x is infinite or NaN, and a NaN stays). Sixteen float lanes, so the block
// vectorises like the update itself.
static float block_probe(const float* __restrict p, const float* __restrict g, const float* __restrict m,
                         const float* __restrict v, std::size_t n, float grad_scale, float lr, float beta1, float beta2,
                         float eps, float weight_decay, float bc1, float bc2) {
  constexpr int kLanes = 16;
  float lane[kLanes] = {};
  const auto bad = [&](std::size_t i) {
    const AdamwElement e = adamw_element(p[i], g[i] * grad_scale, m[i], v[i], lr, beta1, beta2, eps, weight_decay, bc1, bc2);
    return e.p * 0.0f + e.m * 0.0f + e.v * 0.0f;
  };
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lane[j] += bad(i + j);
  for (; i < n; ++i) lane[0] += bad(i);
  float s = 0;
  for (float l : lane) s += l;
  return s;
}

// The update evaluated in one pass over the four arrays, in blocks over the pool: no copies of the
// weights and moments, and nothing written.
void adamw_probe(double* acc, const float* params, const float* grads, const float* m, const float* v, std::size_t n,
                 float lr, float beta1, float beta2, float eps, float weight_decay, int step, const float* scale) {
  const float grad_scale = scale ? *scale : 1.0f;
  const float bc1 = adamw_bias_correction(beta1, step);
  const float bc2 = adamw_bias_correction(beta2, step);
  constexpr std::size_t kBlock = std::size_t{1} << 16;
  const std::size_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<float> partial(blocks);
  for_ranges(blocks, double(n) * 16, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t at = b * kBlock, len = std::min(kBlock, n - at);
      partial[b] = block_probe(params + at, grads + at, m + at, v + at, len, grad_scale, lr, beta1, beta2, eps,
                               weight_decay, bc1, bc2);
    }
  });
  float s = 0;
  for (float x : partial) s += x;
  *acc += s;
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
