// Row reductions in independent lanes: partial results the compiler keeps in one vector register,
// combined in a fixed lane order at the end, so a row's result is the same on every thread.
#pragma once
#include <cmath>

#include "cpu/fast_exp.h"

namespace revenant::cpu {

constexpr int kLanes = 8;

// max over j of x[j] * scale: exact in any order.
template <typename T>
T lane_max(const T* x, int n, T scale = T(1)) {
  T lm[kLanes];
  for (int l = 0; l < kLanes; ++l) lm[l] = -INFINITY;
  int j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) lm[l] = x[j + l] * scale > lm[l] ? x[j + l] * scale : lm[l];
  for (int l = 0; j < n; ++j, ++l) lm[l] = x[j] * scale > lm[l] ? x[j] * scale : lm[l];
  T m = lm[0];
  for (int l = 1; l < kLanes; ++l) m = lm[l] > m ? lm[l] : m;
  return m;
}

// sum over j of exp(x[j] - shift), with the vectorisable exp for float (exp_fast).
template <typename T>
T lane_sum_exp(const T* x, int n, T shift) {
  T ls[kLanes] = {};
  int j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) ls[l] += exp_fast(x[j + l] - shift);
  for (int l = 0; j < n; ++j, ++l) ls[l] += exp_fast(x[j] - shift);
  T s = 0;
  for (int l = 0; l < kLanes; ++l) s += ls[l];
  return s;
}

}  // namespace revenant::cpu
