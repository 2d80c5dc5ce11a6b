// generate()'s bookkeeping as backend ops (core/op_list.h: decode_feed, decode_record): which
// token each row reads next, and the recording of each row's draw. The CUDA backend runs the same
// on the device (cuda/decode.cu), so that its decoding loop never waits for the host per token.
#include "cpu/ops.h"

namespace revenant::cpu {

// The rule both backends share, for one row.
static int next_input(const int* prompt, int plen, const int* gen, int gen_len, int pos) {
  if (pos < plen) return prompt[pos];
  if (pos - plen < gen_len) return gen[pos - plen];
  return 0;  // a finished row: its input no longer matters
}

void decode_feed(int* tok, const int* prompts, const int* plen, const int* gen, const int* gen_len, int B, int P, int M,
                 int pos) {
  for (int b = 0; b < B; ++b)
    tok[b] = next_input(prompts + static_cast<long>(b) * P, plen[b], gen + static_cast<long>(b) * M, gen_len[b], pos);
}

void decode_record(int* gen, float* gen_lp, float* gen_val, int* gen_len, int* done, int* all_done, const int* next,
                   const float* lp, const float* val, const int* plen, int B, int M, int pos, int eos) {
  int all = 1;
  for (int b = 0; b < B; ++b) {
    if (!done[b] && pos + 1 >= plen[b]) {
      const long i = static_cast<long>(b) * M + gen_len[b];
      gen[i] = next[b];
      gen_lp[i] = lp[b];
      if (gen_val) gen_val[i] = val[b];
      ++gen_len[b];
      if (gen_len[b] == M || next[b] == eos) done[b] = 1;
    }
    all &= done[b] != 0;
  }
  *all_done = all;
}

}  // namespace revenant::cpu
