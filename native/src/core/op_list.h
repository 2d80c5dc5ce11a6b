// The op list, written once. The Backend interface (core/backend.h), the CPU reference
// declarations (cpu/ops.h), the CUDA declarations (cuda/ops.cuh) and the forwarding in
// cpu/cpu_backend.cc and cuda/cuda_backend.cu all expand it, so adding an op is one entry here
// plus its cpu/<op>.cc and cuda/<op>.cu.
//
// Each entry is X(return type, name, (parameters), (arguments)). F is the element type: float in
// the backends and on CUDA; the CPU reference is a template on F, so the gradient checks can run
// it in double. REVENANT_FLOAT_OPS are float only (the optimizer, sampling, the gradient norm).
//
// Shapes: N rows of C channels; B batch, T sequence length, NH heads, V vocabulary. Backward ops
// ACCUMULATE (+=) into their gradient outputs so a tensor used twice (a residual stream) gets both
// contributions; callers zero first.
//
// embedding: out[b,t,:] = wte[tokens[b,t],:] + wpe[pos0 + t,:]; wpe (and dwpe) null: no position
//   table.
// layernorm: out = (inp - mean) * rstd * w + b, per row; mean/rstd saved for backward.
// rmsnorm: out = inp * rstd * w, rstd = 1 / sqrt(mean(inp^2) + eps), per row; rstd saved.
// matmul: out[N,OC] = inp[N,C] @ w[OC,C]^T + bias[OC] (bias may be null); in the backward dinp
//   may be null (no gradient wanted) and dbias may be null (no bias).
//   dw may be null too: a frozen weight (under LoRA) gets no gradient.
// lora: a low-rank adapter beside a frozen projection: with A[r,C], B[OC,r] and u = inp @ A^T
//   (u [N,r] scratch), out[n, 0..OC) += scale * u @ B^T, out's rows ld floats apart (so an adapter
//   can write one block of packed q|k|v or gate|up rows; dout has the same layout). The backward
//   recomputes u, fills du [N,r] (scratch) and accumulates dA, dB and dinp (dinp may be null).
// lora_dropout: inverted dropout of an adapter's input [N,C]: out = inp * keep / (1 - p), keep from
//   dropout_keep(seed, stream, n, c, p) (core/dropout.h), p in [0, 1); the backward accumulates
//   dinp += dout * keep / (1 - p), regenerating the same mask.
// attention: causal, NH query heads and NKV key/value heads (NH % NKV == 0; query head h reads kv
//   head h / (NH / NKV); NKV == NH is plain multi-head attention). Head size hs = C / NH.
//   qkv[B,T,C + 2*NKV*hs] rows are q | k | v -> out[B,T,C]; att[B,NH,T,T] saved softmax.
// attention_decode: attention with a KV cache, for T new positions pos0..pos0+T-1 of B rows (T == 1:
//   one decoding step; T > 1: a prompt's prefill): stores k,v of qkv[B,T,C + 2*NKV*hs] in the caches,
//   then attends each query over positions 0..its own. The caches (kv_cache_floats(B, Tmax, kvC)
//   floats each) have the layout of core/kv_cache.h: keys in blocks of positions, values as rows, one
//   contiguous run per (row, kv head); each score is summed exactly as attention_forward sums it.
// rope: rotary position embeddings (Hugging Face "rotate_half" pairs i, i + hd/2; angle
//   pos * theta^(-2i/hd)) applied IN PLACE to the first `heads` heads of width hd of each of the
//   B*T rows of x (rows `stride` floats apart; row (b,t) at position pos0 + t). The backward
//   rotates the gradient back in place: a backward op that overwrites instead of adding (as
//   rope_llama3's and head_rmsnorm's do), since a rotation's input gradient is its output
//   gradient turned back.
// rope_llama3: rope with Llama 3's frequency scaling (Hugging Face rope_type "llama3"): each
//   inverse frequency f = theta^(-2i/hd) of wavelength 2 pi / f is kept where the wavelength is
//   below original_context / high_freq_factor, divided by `factor` where it is above
//   original_context / low_freq_factor, and blended in between with
//   s = (original_context / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor),
//   f' = (1 - s) f / factor + s f. Same layout and in-place convention as rope.
// head_rmsnorm: rmsnorm over each of `heads` heads of width hd at the start of each of N rows
//   (rows `stride` floats apart), one weight w[hd] shared by the heads (Qwen3's q_norm, k_norm);
//   rstd[N, heads] saved. Columns past the heads are not touched, and out may be inp (in place).
//   The backward, like rope's, works in place: dx holds the output's gradient and leaves holding
//   the input's (dw accumulates).
// swiglu: inp[N, 2I] rows are gate | up; out[N, I] = silu(gate) * up.
// logprob: per row of logits[N,V], lp = log softmax(logits)[target] (0 when target < 0) and the
//   distribution's entropy (entropy may be null: not computed); the backward overwrites dlogits with the gradient of
//   sum_rows(dlp*lp + dent*entropy).
// lm_head: the LM head fused with logprob (cpu/lm_head.cc): z = (inp[N,C] @ w[:V]^T) * inv_temp is
//   walked in vocabulary chunks of `chunk` ids with an online log-sum-exp, never held whole. Gives
//   lp (log softmax(z)[target], 0 when target < 0), entropy (may be null) and lse, all [N]; only
//   the first V rows of w are read (a padded vocabulary passes the ids it may score). scratch
//   holds lm_head_scratch(N, chunk) elements. The backward recomputes each chunk's z from lse and
//   entropy and accumulates the gradient of sum_rows(dlp*lp + dent*entropy) into dinp and dw.
//   w16 not null: the head is held as bfloat16 (a LoRA model's frozen base), w is not read, and
//   each chunk's rows of w16 are widened into wide (chunk * C elements) before its product; dw
//   must then be null (a frozen head).
// adamw_update: AdamW on n values; grads are multiplied by *grad_scale first (global-norm
//   clipping; grad_scale in backend memory, so that it can be computed there; null: 1). No
//   backward: this is the update itself.
// adamw_probe: acc[0] += 0 when every weight and both moments adamw_update with the same
//   arguments would produce are finite, else a NaN; nothing written. acc and grad_scale in backend
//   memory.
// clip_scale: *scale = max_norm / (norm + 1e-6) when max_norm > 0 and norm > max_norm, else 1, with
//   norm = sqrt(*sum_squares) (both in backend memory): global-norm clipping's factor, computed in
//   double and rounded to float.
// sampling_forward: one token per row from softmax(logits/temperature) (argmax when
//   temperature == 0) with uniform = Philox(seed, row, step). Not differentiable.
// sampling_filter_forward: per row of logits[N,V], scaled = logits / temperature (greedy,
//   temperature 0: unscaled) and filtered = scaled with the ids top-k (0: off) then top-p (1: off)
//   remove set to -infinity, as Hugging Face's samplers do (cpu/sampling_filter.cc says exactly).
//   scaled may be logits itself (scaled in place): each entry is read once, then written.
// sum_squares: accumulated in double in a fixed order (a deterministic gradient norm).
// bf16_widen: out[i] = the float whose upper 16 bits are inp[i] (bfloat16 -> float32, exact), n
//   values: how a frozen bfloat16 base (LoRA) is read into float32 scratch before its product.
// bf16_embedding_forward: out[n,:] = the bfloat16 row wte[tokens[n],:] widened to float32, N rows
//   of C: the token embedding of a bfloat16 base (llama: no position table), only the rows gathered.
// copy_columns: dst[n * ld + j] = src[n * cols + j] for N rows and j < cols (a block of columns of
//   a wider row-major matrix): a bfloat16 head's chunk of logits into generate's [N, V] logits.
// sum_squares_accumulate: acc[0] += sum_squares(x, n), with acc in backend memory, so that a step
//   sums several tensors on the device and reads the total once.
// policy_loss_forward: core/ppo.h's policy_loss over n tokens in backend memory: dlp and dent
//   written, the statistics into stats[kPolicyStats] (PolicyStat order). ref_lp may be null.
// value_loss_forward: core/ppo.h's value_loss likewise: dvalues written, stats[kValueStats].
// decode_feed, decode_record: generate()'s bookkeeping on the backend, so that a decoding loop
//   keeps its samples where they are drawn. Rows b < B; prompts [B, P] (padded), plen [B] their
//   lengths; gen [B, M] the tokens drawn so far, gen_len [B] how many.
//   decode_feed: tok[b] = the token row b reads at position pos: prompts[b, pos] while pos < plen[b],
//     else gen[b, pos - plen[b]] while gen_len[b] exceeds that index, else 0 (a finished row).
//   decode_record: after the draw at position pos, each row that samples there (not done[b], and
//     pos + 1 >= plen[b]) stores next[b], lp[b] (and val[b], when gen_val is not null) at index
//     gen_len[b] of its row of gen, gen_lp, gen_val, counts it, and is done once it holds M tokens
//     or drew eos (< 0: none); all_done[0] = 1 when every row is done, else 0.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/ppo.h"

namespace revenant {
// Llama 3's rope scaling parameters (rope_scaling in config.json), passed to rope_llama3 by value.
struct RopeScaling {
  float factor = 8.0f, low_freq_factor = 1.0f, high_freq_factor = 4.0f, original_context = 8192.0f;
};
}  // namespace revenant

#define REVENANT_TEMPLATED_OPS(X)                                                                              \
  X(void, embedding_forward, (F * out, const int* tokens, const F* wte, const F* wpe, int B, int T, int C, int pos0), \
    (out, tokens, wte, wpe, B, T, C, pos0))                                                                  \
  X(void, embedding_backward, (F * dwte, F* dwpe, const F* dout, const int* tokens, int B, int T, int C, int pos0), \
    (dwte, dwpe, dout, tokens, B, T, C, pos0))                                                               \
  X(void, layernorm_forward, (F * out, F* mean, F* rstd, const F* inp, const F* w, const F* b, int N, int C),     \
    (out, mean, rstd, inp, w, b, N, C))                                                                      \
  X(void, layernorm_backward,                                                                                \
    (F * dinp, F* dw, F* db, const F* dout, const F* inp, const F* w, const F* mean, const F* rstd, int N, int C), \
    (dinp, dw, db, dout, inp, w, mean, rstd, N, C))                                                          \
  X(void, rmsnorm_forward, (F * out, F* rstd, const F* inp, const F* w, int N, int C, float eps),             \
    (out, rstd, inp, w, N, C, eps))                                                                          \
  X(void, rmsnorm_backward, (F * dinp, F* dw, const F* dout, const F* inp, const F* w, const F* rstd, int N, int C), \
    (dinp, dw, dout, inp, w, rstd, N, C))                                                                    \
  X(void, matmul_forward, (F * out, const F* inp, const F* w, const F* bias, int N, int C, int OC),           \
    (out, inp, w, bias, N, C, OC))                                                                           \
  X(void, matmul_backward,                                                                                   \
    (F * dinp, F* dw, F* dbias, const F* dout, const F* inp, const F* w, int N, int C, int OC),              \
    (dinp, dw, dbias, dout, inp, w, N, C, OC))                                                               \
  X(void, lora_forward,                                                                                      \
    (F * out, F* u, const F* inp, const F* A, const F* B, int N, int C, int OC, int ld, int r, float scale),  \
    (out, u, inp, A, B, N, C, OC, ld, r, scale))                                                             \
  X(void, lora_backward,                                                                                     \
    (F * dinp, F* dA, F* dB, F* u, F* du, const F* dout, const F* inp, const F* A, const F* B, int N, int C,  \
     int OC, int ld, int r, float scale),                                                                    \
    (dinp, dA, dB, u, du, dout, inp, A, B, N, C, OC, ld, r, scale))                                          \
  X(void, lora_dropout_forward, (F * out, const F* inp, int N, int C, float p, uint64_t seed, int stream),   \
    (out, inp, N, C, p, seed, stream))                                                                       \
  X(void, lora_dropout_backward, (F * dinp, const F* dout, int N, int C, float p, uint64_t seed, int stream), \
    (dinp, dout, N, C, p, seed, stream))                                                                     \
  X(void, attention_forward, (F * out, F* att, const F* qkv, int B, int T, int C, int NH, int NKV),           \
    (out, att, qkv, B, T, C, NH, NKV))                                                                       \
  X(void, attention_backward,                                                                                \
    (F * dqkv, const F* dout, const F* qkv, const F* att, int B, int T, int C, int NH, int NKV),             \
    (dqkv, dout, qkv, att, B, T, C, NH, NKV))                                                                \
  X(void, attention_decode,                                                                                  \
    (F * out, F* kcache, F* vcache, const F* qkv, int B, int T, int C, int NH, int NKV, int pos0, int Tmax), \
    (out, kcache, vcache, qkv, B, T, C, NH, NKV, pos0, Tmax))                                                \
  X(void, rope_forward, (F * x, int B, int T, int heads, int hd, int stride, int pos0, float theta),          \
    (x, B, T, heads, hd, stride, pos0, theta))                                                               \
  X(void, rope_backward, (F * dx, int B, int T, int heads, int hd, int stride, int pos0, float theta),        \
    (dx, B, T, heads, hd, stride, pos0, theta))                                                              \
  X(void, rope_llama3_forward,                                                                               \
    (F * x, int B, int T, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling),         \
    (x, B, T, heads, hd, stride, pos0, theta, scaling))                                                      \
  X(void, rope_llama3_backward,                                                                              \
    (F * dx, int B, int T, int heads, int hd, int stride, int pos0, float theta, RopeScaling scaling),        \
    (dx, B, T, heads, hd, stride, pos0, theta, scaling))                                                     \
  X(void, head_rmsnorm_forward,                                                                              \
    (F * out, F* rstd, const F* inp, const F* w, int N, int heads, int hd, int stride, float eps),           \
    (out, rstd, inp, w, N, heads, hd, stride, eps))                                                          \
  X(void, head_rmsnorm_backward,                                                                             \
    (F * dx, F* dw, const F* inp, const F* w, const F* rstd, int N, int heads, int hd, int stride),          \
    (dx, dw, inp, w, rstd, N, heads, hd, stride))                                                            \
  X(void, swiglu_forward, (F * out, const F* inp, int N, int I), (out, inp, N, I))                           \
  X(void, swiglu_backward, (F * dinp, const F* inp, const F* dout, int N, int I), (dinp, inp, dout, N, I))   \
  X(void, gelu_forward, (F * out, const F* inp, int N), (out, inp, N))                                       \
  X(void, gelu_backward, (F * dinp, const F* inp, const F* dout, int N), (dinp, inp, dout, N))               \
  X(void, residual_forward, (F * out, const F* a, const F* b, int N), (out, a, b, N))                        \
  X(void, residual_backward, (F * da, F* db, const F* dout, int N), (da, db, dout, N))                       \
  X(void, logprob_forward, (F * lp, F* entropy, const F* logits, const int* targets, int N, int V),           \
    (lp, entropy, logits, targets, N, V))                                                                    \
  X(void, logprob_backward,                                                                                  \
    (F * dlogits, const F* logits, const int* targets, const F* dlp, const F* dent, int N, int V),           \
    (dlogits, logits, targets, dlp, dent, N, V))                                                          \
  X(void, lm_head_forward,                                                                                   \
    (F * lp, F* entropy, F* lse, F* scratch, const F* inp, const F* w, const uint16_t* w16, F* wide,           \
     const int* targets, int N, int C, int V, int chunk, float inv_temp),                                    \
    (lp, entropy, lse, scratch, inp, w, w16, wide, targets, N, C, V, chunk, inv_temp))                       \
  X(void, lm_head_backward,                                                                                  \
    (F * dinp, F* dw, F* scratch, const F* inp, const F* w, const uint16_t* w16, F* wide, const int* targets,  \
     const F* lse, const F* entropy, const F* dlp, const F* dent, int N, int C, int V, int chunk, float inv_temp), \
    (dinp, dw, scratch, inp, w, w16, wide, targets, lse, entropy, dlp, dent, N, C, V, chunk, inv_temp))

#define REVENANT_FLOAT_OPS(X)                                                                                \
  X(void, adamw_update,                                                                                      \
    (float* params, const float* grads, float* m, float* v, std::size_t n, float lr, float beta1, float beta2, \
     float eps, float weight_decay, int step, const float* grad_scale),                                      \
    (params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale))                         \
  X(void, adamw_probe,                                                                                       \
    (double* acc, const float* params, const float* grads, const float* m, const float* v, std::size_t n, float lr, \
     float beta1, float beta2, float eps, float weight_decay, int step, const float* grad_scale),            \
    (acc, params, grads, m, v, n, lr, beta1, beta2, eps, weight_decay, step, grad_scale))                    \
  X(void, clip_scale, (float* scale, const double* sum_squares, float max_norm), (scale, sum_squares, max_norm)) \
  X(void, sampling_forward, (int* out, const float* logits, int N, int V, float temperature, uint64_t seed, int step), \
    (out, logits, N, V, temperature, seed, step))                                                            \
  X(void, sampling_filter_forward,                                                                           \
    (float* scaled, float* filtered, const float* logits, int N, int V, float temperature, int top_k, float top_p), \
    (scaled, filtered, logits, N, V, temperature, top_k, top_p))                                             \
  X(double, sum_squares, (const float* x, std::size_t n), (x, n))                                            \
  X(void, bf16_widen, (float* out, const uint16_t* inp, std::size_t n), (out, inp, n))                      \
  X(void, bf16_embedding_forward, (float* out, const int* tokens, const uint16_t* wte, int N, int C),        \
    (out, tokens, wte, N, C))                                                                                \
  X(void, copy_columns, (float* dst, int ld, const float* src, int N, int cols), (dst, ld, src, N, cols))    \
  X(void, sum_squares_accumulate, (double* acc, const float* x, std::size_t n), (acc, x, n))                 \
  X(void, policy_loss_forward,                                                                               \
    (float* dlp, float* dent, double* stats, const float* lp, const float* entropy, const float* weight,      \
     const float* adv, const float* old_lp, const float* ref_lp, int n, ::revenant::PolicyLossConfig cfg),            \
    (dlp, dent, stats, lp, entropy, weight, adv, old_lp, ref_lp, n, cfg))                                    \
  X(void, value_loss_forward,                                                                                \
    (float* dvalues, double* stats, const float* values, const float* weight, const float* returns,           \
     const float* old_values, int n, float clip_range),                                                      \
    (dvalues, stats, values, weight, returns, old_values, n, clip_range))                                    \
  X(void, decode_feed,                                                                                       \
    (int* tok, const int* prompts, const int* plen, const int* gen, const int* gen_len, int B, int P, int M,  \
     int pos),                                                                                               \
    (tok, prompts, plen, gen, gen_len, B, P, M, pos))                                                        \
  X(void, decode_record,                                                                                     \
    (int* gen, float* gen_lp, float* gen_val, int* gen_len, int* done, int* all_done, const int* next,        \
     const float* lp, const float* val, const int* plen, int B, int M, int pos, int eos),                    \
    (gen, gen_lp, gen_val, gen_len, done, all_done, next, lp, val, plen, B, M, pos, eos))

// The scratch lm_head_forward and lm_head_backward take: N rows of one chunk's logits, then two
// running sums per row.
namespace revenant {
constexpr std::size_t lm_head_scratch(std::size_t N, std::size_t chunk) { return N * (chunk + 2); }
}  // namespace revenant

#define REVENANT_OPS(X) REVENANT_TEMPLATED_OPS(X) REVENANT_FLOAT_OPS(X)
