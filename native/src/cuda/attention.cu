// attention: causal multi-head attention (CUDA mirror of cpu/attention.cc). Forward: one thread
// per (batch, head, query) row with a fused score/softmax/weighted-sum. Backward: one thread per
// (batch, head), walking queries in order so the shared dk/dv rows need no atomics.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void attention_forward_kernel(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= B * NH * T) return;
  const int t = idx % T, bh = idx / T, h = bh % NH, b = bh / NH;
  const int hs = C / NH;
  const float scale = rsqrtf(static_cast<float>(hs));
  const float* q = qkv + (static_cast<long>(b) * T + t) * 3 * C + h * hs;
  float* a = att + (static_cast<long>(bh) * T + t) * T;
  float maxv = -INFINITY;
  for (int t2 = 0; t2 <= t; ++t2) {
    const float* k = qkv + (static_cast<long>(b) * T + t2) * 3 * C + C + h * hs;
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
  float* o = out + (static_cast<long>(b) * T + t) * C + h * hs;
  for (int i = 0; i < hs; ++i) {
    float s = 0;
    for (int t2 = 0; t2 <= t; ++t2) s += a[t2] * qkv[(static_cast<long>(b) * T + t2) * 3 * C + 2 * C + h * hs + i];
    o[i] = s;
  }
}

__global__ void attention_backward_kernel(float* dqkv, const float* dout, const float* qkv, const float* att, int B,
                                          int T, int C, int NH) {
  const int bh = blockIdx.x * blockDim.x + threadIdx.x;
  if (bh >= B * NH) return;
  const int h = bh % NH, b = bh / NH, hs = C / NH;
  const float scale = rsqrtf(static_cast<float>(hs));
  for (int t = 0; t < T; ++t) {
    const long row = static_cast<long>(b) * T + t;
    const float* q = qkv + row * 3 * C + h * hs;
    float* dq = dqkv + row * 3 * C + h * hs;
    const float* a = att + (static_cast<long>(bh) * T + t) * T;
    const float* d = dout + row * C + h * hs;
    float dot = 0;  // sum att * datt, datt[t2] = v[t2] . d
    for (int t2 = 0; t2 <= t; ++t2) {
      const long r2 = static_cast<long>(b) * T + t2;
      const float* v = qkv + r2 * 3 * C + 2 * C + h * hs;
      float* dv = dqkv + r2 * 3 * C + 2 * C + h * hs;
      float s = 0;
      for (int i = 0; i < hs; ++i) {
        s += v[i] * d[i];
        dv[i] += a[t2] * d[i];
      }
      dot += a[t2] * s;
    }
    for (int t2 = 0; t2 <= t; ++t2) {
      const long r2 = static_cast<long>(b) * T + t2;
      const float* v = qkv + r2 * 3 * C + 2 * C + h * hs;
      float datt = 0;
      for (int i = 0; i < hs; ++i) datt += v[i] * d[i];
      const float dpre = a[t2] * (datt - dot) * scale;
      const float* k = qkv + r2 * 3 * C + C + h * hs;
      float* dk = dqkv + r2 * 3 * C + C + h * hs;
      for (int i = 0; i < hs; ++i) {
        dq[i] += dpre * k[i];
        dk[i] += dpre * q[i];
      }
    }
  }
}

__global__ void kv_store_kernel(float* kcache, float* vcache, const float* qkv, int B, int C, int pos, int Tmax) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B * C) return;
  const int b = i / C, c = i % C;
  const long dst = (static_cast<long>(b) * Tmax + pos) * C + c;
  kcache[dst] = qkv[static_cast<long>(b) * 3 * C + C + c];
  vcache[dst] = qkv[static_cast<long>(b) * 3 * C + 2 * C + c];
}

// One thread per (batch, head): max, normaliser, then the weighted sum, recomputing the scores
// instead of keeping a per-thread array of up to Tmax floats.
__global__ void attention_decode_kernel(float* out, const float* kcache, const float* vcache, const float* qkv, int B,
                                        int C, int NH, int pos, int Tmax) {
  const int bh = blockIdx.x * blockDim.x + threadIdx.x;
  if (bh >= B * NH) return;
  const int h = bh % NH, b = bh / NH, hs = C / NH;
  const float scale = rsqrtf(static_cast<float>(hs));
  const float* q = qkv + static_cast<long>(b) * 3 * C + h * hs;
  auto score = [&](int t2) {
    const float* k = kcache + (static_cast<long>(b) * Tmax + t2) * C + h * hs;
    float dot = 0;
    for (int i = 0; i < hs; ++i) dot += q[i] * k[i];
    return dot * scale;
  };
  float maxv = -INFINITY;
  for (int t2 = 0; t2 <= pos; ++t2) maxv = fmaxf(maxv, score(t2));
  float sum = 0;
  for (int t2 = 0; t2 <= pos; ++t2) sum += expf(score(t2) - maxv);
  float* o = out + static_cast<long>(b) * C + h * hs;
  for (int i = 0; i < hs; ++i) o[i] = 0;
  for (int t2 = 0; t2 <= pos; ++t2) {
    const float a = expf(score(t2) - maxv) / sum;
    const float* v = vcache + (static_cast<long>(b) * Tmax + t2) * C + h * hs;
    for (int i = 0; i < hs; ++i) o[i] += a * v[i];
  }
}

void attention_forward(float* out, float* att, const float* qkv, int B, int T, int C, int NH) {
  attention_forward_kernel<<<blocks_for(static_cast<long>(B) * NH * T, 128), 128>>>(out, att, qkv, B, T, C, NH);
  RV_CUDA_LAUNCHED("attention_forward");
}

void attention_backward(float* dqkv, const float* dout, const float* qkv, const float* att, int B, int T, int C, int NH) {
  attention_backward_kernel<<<blocks_for(static_cast<long>(B) * NH, 64), 64>>>(dqkv, dout, qkv, att, B, T, C, NH);
  RV_CUDA_LAUNCHED("attention_backward");
}

void attention_decode(float* out, float* kcache, float* vcache, const float* qkv, int B, int C, int NH, int pos, int Tmax) {
  kv_store_kernel<<<blocks_for(static_cast<long>(B) * C, 256), 256>>>(kcache, vcache, qkv, B, C, pos, Tmax);
  RV_CUDA_LAUNCHED("attention_decode");
  attention_decode_kernel<<<blocks_for(static_cast<long>(B) * NH, 64), 64>>>(out, kcache, vcache, qkv, B, C, NH, pos, Tmax);
  RV_CUDA_LAUNCHED("attention_decode");
}

}  // namespace revenant::cuda
