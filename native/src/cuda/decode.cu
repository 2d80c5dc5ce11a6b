// generate()'s bookkeeping on the device (CUDA mirror of cpu/decode.cc): the next step's input
// tokens and the recording of each row's draw stay where the draw is made, so the decoding loop
// queues step after step without the host reading anything back per token.
#include "cuda/ops.cuh"

namespace revenant::cuda {

__global__ void decode_feed_kernel(int* tok, const int* prompts, const int* plen, const int* gen, const int* gen_len,
                                   int B, int P, int M, int pos) {
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= B) return;
  const int len = plen[b];
  int t = 0;  // a finished row: its input no longer matters
  if (pos < len) t = prompts[static_cast<long>(b) * P + pos];
  else if (pos - len < gen_len[b]) t = gen[static_cast<long>(b) * M + pos - len];
  tok[b] = t;
}

// One block: each thread records its rows, then the block agrees on whether every row is done.
constexpr int kRecordThreads = 256;
__global__ void decode_record_kernel(int* gen, float* gen_lp, float* gen_val, int* gen_len, int* done, int* all_done,
                                     const int* next, const float* lp, const float* val, const int* plen, int B, int M,
                                     int pos, int eos) {
  int all = 1;
  for (int b = threadIdx.x; b < B; b += kRecordThreads) {
    if (!done[b] && pos + 1 >= plen[b]) {
      const long i = static_cast<long>(b) * M + gen_len[b];
      gen[i] = next[b];
      gen_lp[i] = lp[b];
      if (gen_val) gen_val[i] = val[b];
      const int n = gen_len[b] + 1;
      gen_len[b] = n;
      if (n == M || next[b] == eos) done[b] = 1;
    }
    all &= done[b] != 0;
  }
  all = __syncthreads_and(all);
  if (threadIdx.x == 0) *all_done = all;
}

void decode_feed(int* tok, const int* prompts, const int* plen, const int* gen, const int* gen_len, int B, int P, int M,
                 int pos) {
  RV_LAUNCH(decode_feed_kernel, blocks_for(B, 128), 128)(tok, prompts, plen, gen, gen_len, B, P, M, pos);
  RV_CUDA_LAUNCHED("decode_feed");
}

void decode_record(int* gen, float* gen_lp, float* gen_val, int* gen_len, int* done, int* all_done, const int* next,
                   const float* lp, const float* val, const int* plen, int B, int M, int pos, int eos) {
  RV_LAUNCH(decode_record_kernel, 1, kRecordThreads)(gen, gen_lp, gen_val, gen_len, done, all_done, next, lp, val, plen,
                                                     B, M, pos, eos);
  RV_CUDA_LAUNCHED("decode_record");
}

}  // namespace revenant::cuda
