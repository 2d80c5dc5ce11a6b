// adamw: Adam with decoupled weight decay (Loshchilov & Hutter), bias-corrected moments.
// Also the deterministic sum of squares used for the global gradient norm.
#include <cmath>

#include "cpu/ops.h"

namespace revenant::cpu {

void adamw_update(float* params, const float* grads, float* m, float* v, std::size_t n, float lr,
                  float beta1, float beta2, float eps, float weight_decay, int step,
                  float grad_scale) {
  const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
  const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
  for_chunks(static_cast<int>(n), double(n) * 12, [&](int begin, int end) {
    for (int i = begin; i < end; ++i) {
      const float g = grads[i] * grad_scale;
      m[i] = beta1 * m[i] + (1.0f - beta1) * g;
      v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
      const float mhat = m[i] / bc1;
      const float vhat = v[i] / bc2;
      params[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * params[i]);
    }
  });
}

double sum_squares(const float* x, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
  return s;
}

}  // namespace revenant::cpu
