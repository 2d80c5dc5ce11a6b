// One weight's AdamW update: the formula cpu/adamw.cc and cuda/adamw.cu apply, and the finite-update
// probe evaluates without writing, written once so that the probe judges exactly what the update
// will produce, on both backends.
#pragma once
#include <cmath>

#include "core/host_device.h"

namespace revenant {

struct AdamwElement {
  float p, m, v;  // the weight and its two moments after the update
};

// AdamW's bias correction 1 - beta^step, computed once per update on the host.
inline float adamw_bias_correction(float beta, int step) { return 1.0f - std::pow(beta, static_cast<float>(step)); }

// g is the gradient already multiplied by the clipping factor; bc1 and bc2 the bias corrections
// (adamw_bias_correction).
RV_HD AdamwElement adamw_element(float p, float g, float m, float v, float lr, float beta1, float beta2, float eps,
                                 float weight_decay, float bc1, float bc2) {
  AdamwElement e;
  e.m = beta1 * m + (1.0f - beta1) * g;
  e.v = beta2 * v + (1.0f - beta2) * g * g;
  e.p = p - lr * ((e.m / bc1) / (sqrtf(e.v / bc2) + eps) + weight_decay * p);
  return e;
}

}  // namespace revenant
