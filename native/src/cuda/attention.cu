// attention: causal attention with grouped kv heads (CUDA mirror of cpu/attention.cc). qkv rows
// are [q: NH heads | k: NKV heads | v: NKV heads] of hs = C / NH; query head h reads kv head
// h / (NH / NKV). Forward: one thread per (batch, head, query) row with a fused
// score/softmax/weighted-sum. Backward: one thread per query row for dq, then one per key row for
// dk/dv (summing its group's query heads in order), so no row needs atomics.
#include "core/kv_cache.h"
#include "cuda/ops.cuh"

namespace revenant::cuda {

namespace {

// Column offsets of one row of the packed qkv tensor.
struct QkvLayout {
  int C, NH, NKV, hs, kvC, stride;
  __host__ __device__ QkvLayout(int C_, int NH_, int NKV_)
      : C(C_), NH(NH_), NKV(NKV_), hs(C_ / NH_), kvC(NKV_ * (C_ / NH_)), stride(C_ + 2 * NKV_ * (C_ / NH_)) {}
  __device__ int group(int h) const { return h / (NH / NKV); }
  __device__ long q(long row, int h) const { return row * stride + h * hs; }
  __device__ long k(long row, int g) const { return row * stride + C + g * hs; }
  __device__ long v(long row, int g) const { return row * stride + C + kvC + g * hs; }
};

}  // namespace

__global__ void attention_forward_kernel(float* out, float* att, const float* qkv, int B, int T, int C, int NH, int NKV) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= B * NH * T) return;
  const QkvLayout L(C, NH, NKV);
  const int t = idx % T, bh = idx / T, h = bh % NH, b = bh / NH, g = L.group(h), hs = L.hs;
  const long row0 = static_cast<long>(b) * T;
  const float scale = rsqrtf(static_cast<float>(hs));
  const float* q = qkv + L.q(row0 + t, h);
  float* a = att + (static_cast<long>(bh) * T + t) * T;
  float maxv = -INFINITY;
  for (int t2 = 0; t2 <= t; ++t2) {
    const float* k = qkv + L.k(row0 + t2, g);
    float dot = 0;
    for (int i = 0; i < hs; ++i) dot += q[i] * k[i];
    a[t2] = dot * scale;
    maxv = fmaxf(maxv, a[t2]);
  }
  float sum = 0;
  for (int t2 = 0; t2 <= t; ++t2) {
    a[t2] = expf(a[t2] - maxv);
    sum += a[t2];
  }
  for (int t2 = 0; t2 <= t; ++t2) a[t2] /= sum;
  for (int t2 = t + 1; t2 < T; ++t2) a[t2] = 0;
  float* o = out + (row0 + t) * C + h * hs;
  for (int i = 0; i < hs; ++i) {
    float s = 0;
    for (int t2 = 0; t2 <= t; ++t2) s += a[t2] * qkv[L.v(row0 + t2, g) + i];
    o[i] = s;
  }
}

// The backward in two parallel passes, each output row summed by one thread in a fixed order (no
// atomics): one thread per (batch, head, query) sums dq and saves dot = sum_t2 att[t2] (v[t2] . dout),
// then one thread per (batch, kv head, key) sums dk and dv over its group's heads and the queries
// at or after it. The sums run in the order of the single-thread walk they replace, so the bits
// are the same.
__global__ void attention_backward_query_kernel(float* dqkv, float* dots, const float* dout, const float* qkv,
                                                const float* att, int B, int T, int C, int NH, int NKV) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(B) * NH * T) return;
  const QkvLayout L(C, NH, NKV);
  const int t = static_cast<int>(idx % T), h = static_cast<int>(idx / T % NH), b = static_cast<int>(idx / T / NH);
  const int g = L.group(h), hs = L.hs;
  const long row0 = static_cast<long>(b) * T, row = row0 + t;
  const float scale = rsqrtf(static_cast<float>(hs));
  const float* a = att + idx * T;
  const float* d = dout + row * C + h * hs;
  auto datt = [&](int t2) {  // v[t2] . dout
    const float* v = qkv + L.v(row0 + t2, g);
    float s = 0;
    for (int i = 0; i < hs; ++i) s += v[i] * d[i];
    return s;
  };
  float dot = 0;
  for (int t2 = 0; t2 <= t; ++t2) dot += a[t2] * datt(t2);
  dots[idx] = dot;
  float* dq = dqkv + L.q(row, h);
  for (int t2 = 0; t2 <= t; ++t2) {
    const float dpre = a[t2] * (datt(t2) - dot) * scale;
    const float* k = qkv + L.k(row0 + t2, g);
    for (int i = 0; i < hs; ++i) dq[i] += dpre * k[i];
  }
}

__global__ void attention_backward_key_kernel(float* dqkv, const float* dots, const float* dout, const float* qkv,
                                              const float* att, int B, int T, int C, int NH, int NKV) {
  const long idx = blockIdx.x * static_cast<long>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<long>(B) * NKV * T) return;
  const QkvLayout L(C, NH, NKV);
  const int t2 = static_cast<int>(idx % T), g = static_cast<int>(idx / T % NKV), b = static_cast<int>(idx / T / NKV);
  const int hs = L.hs, per_group = NH / NKV;
  const long row0 = static_cast<long>(b) * T;
  const float scale = rsqrtf(static_cast<float>(hs));
  const float* v = qkv + L.v(row0 + t2, g);
  float* dk = dqkv + L.k(row0 + t2, g);
  float* dv = dqkv + L.v(row0 + t2, g);
  for (int h = g * per_group; h < (g + 1) * per_group; ++h) {
    const long bh = static_cast<long>(b) * NH + h;
    for (int t = t2; t < T; ++t) {
      const float a = att[(bh * T + t) * T + t2];
      const float* d = dout + (row0 + t) * C + h * hs;
      const float* q = qkv + L.q(row0 + t, h);
      float s = 0;
      for (int i = 0; i < hs; ++i) {
        s += v[i] * d[i];
        dv[i] += a * d[i];
      }
      const float dpre = a * (s - dots[bh * T + t]) * scale;
      for (int i = 0; i < hs; ++i) dk[i] += dpre * q[i];
    }
  }
}

// One thread per (row, new position, kv channel), into the layout of core/kv_cache.h (the CPU
// backend's).
__global__ void kv_store_kernel(float* kcache, float* vcache, const float* qkv, int B, int T, int C, int NH, int NKV,
                                int pos0, int Tmax) {
  const QkvLayout L(C, NH, NKV);
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<long>(B) * T * L.kvC) return;
  const int c = static_cast<int>(i % L.kvC), t = static_cast<int>(i / L.kvC % T), b = static_cast<int>(i / L.kvC / T);
  const long row = static_cast<long>(b) * T + t;
  const int at = pos0 + t, g = c / L.hs, d = c % L.hs;
  kcache[kcache_at(b, g, d, at, NKV, L.hs, Tmax)] = qkv[L.k(row, 0) + c];
  vcache[vcache_at(b, g, at, NKV, L.hs, Tmax) + d] = qkv[L.v(row, 0) + c];
}

// One thread per (batch, head, new position): max, normaliser, then the weighted sum, recomputing
// the scores instead of keeping a per-thread array of up to Tmax floats.
__global__ void attention_decode_kernel(float* out, const float* kcache, const float* vcache, const float* qkv, int B,
                                        int T, int C, int NH, int NKV, int pos0, int Tmax) {
  const long idx = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long>(B) * NH * T) return;
  const QkvLayout L(C, NH, NKV);
  const int t = static_cast<int>(idx % T), bh = static_cast<int>(idx / T), h = bh % NH, b = bh / NH, g = L.group(h);
  const int hs = L.hs, pos = pos0 + t;
  const long row = static_cast<long>(b) * T + t;
  const float scale = rsqrtf(static_cast<float>(hs));
  const float* q = qkv + L.q(row, h);
  const float* kb = kcache + kcache_at(b, g, 0, 0, NKV, hs, Tmax);
  const float* vrows = vcache + vcache_at(b, g, 0, NKV, hs, Tmax);
  auto score = [&](int t2) {
    const float* k = kb + static_cast<long>(t2 / kKvBlock) * hs * kKvBlock + t2 % kKvBlock;
    float dot = 0;
    for (int i = 0; i < hs; ++i) dot += q[i] * k[i * kKvBlock];
    return dot * scale;
  };
  float maxv = -INFINITY;
  for (int t2 = 0; t2 <= pos; ++t2) maxv = fmaxf(maxv, score(t2));
  float sum = 0;
  for (int t2 = 0; t2 <= pos; ++t2) sum += expf(score(t2) - maxv);
  float* o = out + row * C + h * hs;
  for (int i = 0; i < hs; ++i) o[i] = 0;
  for (int t2 = 0; t2 <= pos; ++t2) {
    const float a = expf(score(t2) - maxv) / sum;
    const float* v = vrows + static_cast<long>(t2) * hs;
    for (int i = 0; i < hs; ++i) o[i] += a * v[i];
  }
}

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH, int NKV) {
  RV_LAUNCH(attention_forward_kernel, blocks_for(static_cast<long>(B) * NH * T, 128), 128)(out, att, qkv, B, T, C, NH, NKV);
  RV_CUDA_LAUNCHED("attention_forward");
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int T, int C, int NH,
                        int NKV) {
  float* dots = static_cast<float*>(scratch(sizeof(float) * B * NH * T, "attention_backward"));
  RV_LAUNCH(attention_backward_query_kernel, blocks_for(static_cast<long>(B) * NH * T, 128), 128)(dqkv, dots, dout, qkv,
                                                                                                  att, B, T, C, NH, NKV);
  RV_CUDA_LAUNCHED("attention_backward");
  RV_LAUNCH(attention_backward_key_kernel, blocks_for(static_cast<long>(B) * NKV * T, 128), 128)(dqkv, dots, dout, qkv,
                                                                                                att, B, T, C, NH, NKV);
  RV_CUDA_LAUNCHED("attention_backward");
}

void attention_decode(float* out, float* kcache, float* vcache, const float* qkv, int B, int T, int C, int NH, int NKV,
                      int pos0, int Tmax) {
  const long kv = static_cast<long>(B) * T * NKV * (C / NH);
  RV_LAUNCH(kv_store_kernel, blocks_for(kv, 256), 256)(kcache, vcache, qkv, B, T, C, NH, NKV, pos0, Tmax);
  RV_CUDA_LAUNCHED("attention_decode");
  RV_LAUNCH(attention_decode_kernel, blocks_for(static_cast<long>(B) * NH * T, 64), 64)(out, kcache, vcache, qkv, B, T, C, NH,
                                                                                NKV, pos0, Tmax);
  RV_CUDA_LAUNCHED("attention_decode");
}

}  // namespace revenant::cuda
