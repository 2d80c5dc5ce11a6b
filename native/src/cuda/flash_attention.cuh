// Fused causal attention (flash attention) with grouped kv heads: the same packed qkv input and
// out[B,T,C] output as attention_forward (core/op_list.h), but no [B,NH,T,T] probability tensor:
// the forward keeps a running max and sum per query over tiles of keys (online softmax) and saves
// the log-sum-exp of each query's scores; the backward recomputes the probabilities from it.
// fp32 throughout. Deterministic: every output element is summed by one warp in a fixed order,
// dK/dV of a key by the one warp that owns that key, with no atomics.
//
// Plain C++ (device pointers, no CUDA types), so host code without the CUDA headers can call it.
#pragma once

namespace revenant::cuda {

// Widest head the kernels take (each lane of a warp holds head / 32 of a query's values).
constexpr int kFlashMaxHeadSize = 128;

// True when the kernels take heads of C / NH channels.
bool flash_attention_supports(int C, int NH);

// out[B,T,C] = causal softmax(q k^T / sqrt(hs)) v per query head; lse[B,NH,T] = log of each
// softmax's normaliser (scores scaled, max included).
void flash_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int NH, int NKV);

// dqkv += the gradient of the forward above for dout; lse as the forward saved it; delta is
// scratch of B*NH*T floats (dout . out per query, recomputed here).
void flash_attention_backward(float* dqkv, float* delta, const float* dout, const float* qkv, const float* lse, int B,
                              int T, int C, int NH, int NKV);

}  // namespace revenant::cuda
