// Tensor-core matrix products: bf16 WMMA (16x16x16 fragments) with fp32 accumulation, for devices
// of compute capability 8.0 or newer. Inputs and outputs stay fp32 (the master weights); each
// operand tile is rounded to bf16 as it is staged in shared memory. Every output element is
// summed by one warp in a fixed k order, without split-K or atomics, so a product gives the same
// bits on every run.
//
// Plain C++ (device pointers, no CUDA types), so host code that does not include the CUDA
// headers (the native tests and benchmarks) can call it.
#pragma once

namespace revenant::cuda {

// True when the current device can run the bf16 WMMA kernels (compute capability >= 8.0); asked
// of the runtime once per device. Below it, callers use the fp32 kernels of matmul.cu.
bool tensor_cores_supported();

// C[M,N] = (accumulate ? C : 0) + epilogue(op(A) op(B)), epilogue(x) = gelu(x + bias[n]) with the
// bias and the GELU (tanh approximation, as gelu.cu) each optional (bias null, gelu false).
// A is [M,K] row-major, or [K,M] when trans_a; B is [K,N], or [N,K] when trans_b. C is [M,N].
// Any M, N, K >= 1. Throws revenant::Error on a device without tensor cores.
void gemm_tc(float* C, const float* A, bool trans_a, const float* B, bool trans_b, int M, int N, int K,
             bool accumulate, const float* bias, bool gelu, const char* op);

// matmul_forward / matmul_backward (core/op_list.h) on tensor cores; dbias is summed in fp32.
void matmul_forward_tc(float* out, const float* inp, const float* w, const float* bias, int N, int C, int OC);
void matmul_backward_tc(float* dinp, float* dw, float* dbias, const float* dout, const float* inp, const float* w,
                        int N, int C, int OC);

}  // namespace revenant::cuda
