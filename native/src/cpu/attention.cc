// attention: causal self-attention over a packed qkv tensor [B,T,C + 2*NKV*hs] (q | k | v), with
// grouped-query attention when NKV < NH (query head h reads kv head h / (NH / NKV)).
// Forward work is split by (batch, query head); backward by (batch, kv head), one task walking the
// query heads of its group in order, since they all add into the same dk/dv rows. Either way every
// output belongs to one task: no races and no order-dependent sums. With NKV == NH the arithmetic
// is exactly that of plain multi-head attention.
#include <cmath>
#include <cstring>
#include <vector>

#include "core/kv_cache.h"
#include "cpu/fast_exp.h"
#include "cpu/ops.h"

namespace revenant::cpu {

namespace {

// Column offsets of one row of the packed qkv tensor.
struct QkvLayout {
  int C, NH, NKV, hs, kvC, stride;
  QkvLayout(int C_, int NH_, int NKV_)
      : C(C_), NH(NH_), NKV(NKV_), hs(C_ / NH_), kvC(NKV_ * (C_ / NH_)), stride(C_ + 2 * NKV_ * (C_ / NH_)) {}
  int group(int h) const { return h / (NH / NKV); }
  long q(long row, int h) const { return row * stride + h * hs; }
  long k(long row, int g) const { return row * stride + C + g * hs; }
  long v(long row, int g) const { return row * stride + C + kvC + g * hs; }
};

}  // namespace

// Copies hs columns starting at `col` of rows row0..row0+Tn-1 of qkv, transposed to [hs][T], so
// score loops run over contiguous keys (and vectorise) while each score still sums over i in
// order: the arithmetic is that of a plain dot product.
template <typename T>
static void gather_transposed(T* dst, const T* qkv, long row0, long col, int Tn, int stride, int hs) {
  for (int t2 = 0; t2 < Tn; ++t2) {
    const T* src = qkv + (row0 + t2) * stride + col;
    for (int i = 0; i < hs; ++i) dst[i * Tn + t2] = src[i];
  }
}

// scores[t2] = sum_i q[i] * kt[i][t2] for t2 in [0, n), summed over i in order.
template <typename T>
static void dot_rows(T* __restrict scores, const T* __restrict q, const T* __restrict kt, int n, int stride, int hs) {
  for (int t2 = 0; t2 < n; ++t2) scores[t2] = 0;
  for (int i = 0; i < hs; ++i) {
    const T qi = q[i];
    const T* __restrict row = kt + static_cast<long>(i) * stride;
    for (int t2 = 0; t2 < n; ++t2) scores[t2] += qi * row[t2];
  }
}

// o[i] = sum over t2 < n of a[t2] * v[t2 * stride + i], summed over t2 in order in `acc` (not in
// o, which the compiler must assume may alias v: a store per term otherwise).
template <typename T>
static void weighted_rows(T* o, T* __restrict acc, const T* a, const T* v, int n, int stride, int hs) {
  for (int i = 0; i < hs; ++i) acc[i] = 0;
  for (int t2 = 0; t2 < n; ++t2) {
    const T w = a[t2];
    const T* __restrict row = v + static_cast<long>(t2) * stride;
    for (int i = 0; i < hs; ++i) acc[i] += w * row[i];
  }
  for (int i = 0; i < hs; ++i) o[i] = acc[i];
}

// dot_rows for R query rows at once, each over the first n keys: a row's scores are summed over i
// in order exactly as dot_rows sums them, and the R rows' independent chains of adds run side by
// side instead of one after another (with a head of 16 the chains, not the multiply-adds, set the
// pace). Keys past a row's own are computed too and left for the caller to overwrite.
template <int R, typename T>
static void dot_rows_many(T* const (&scores)[R], const T* const (&q)[R], const T* __restrict kt, int n, int stride, int hs) {
  for (int r = 0; r < R; ++r)
    for (int t2 = 0; t2 < n; ++t2) scores[r][t2] = 0;
  for (int i = 0; i < hs; ++i) {
    const T* __restrict row = kt + static_cast<long>(i) * stride;
    for (int r = 0; r < R; ++r) {
      const T qi = q[r][i];
      T* __restrict s = scores[r];
      for (int t2 = 0; t2 < n; ++t2) s[t2] += qi * row[t2];
    }
  }
}

// weighted_rows for R rows, row r over its first n[r] keys (n ascending): the keys every row sees
// are summed side by side, then each row's own remainder, so every row's sum runs over t2 in
// order exactly as weighted_rows runs it.
template <int R, typename T>
static void weighted_rows_many(T* const (&o)[R], T* __restrict acc, T* const (&a)[R], const T* v, const int (&n)[R],
                               int stride, int hs) {
  for (int i = 0; i < R * hs; ++i) acc[i] = 0;
  for (int t2 = 0; t2 < n[0]; ++t2) {
    const T* __restrict row = v + static_cast<long>(t2) * stride;
    for (int r = 0; r < R; ++r) {
      const T w = a[r][t2];
      T* __restrict ar = acc + r * hs;
      for (int i = 0; i < hs; ++i) ar[i] += w * row[i];
    }
  }
  for (int r = 1; r < R; ++r) {
    T* __restrict ar = acc + r * hs;
    for (int t2 = n[0]; t2 < n[r]; ++t2) {
      const T w = a[r][t2];
      const T* __restrict row = v + static_cast<long>(t2) * stride;
      for (int i = 0; i < hs; ++i) ar[i] += w * row[i];
    }
  }
  for (int r = 0; r < R; ++r)
    for (int i = 0; i < hs; ++i) o[r][i] = acc[r * hs + i];
}

// One query row's softmax over its scores a[0..t] (scaled in place), the rest of the row zeroed.
template <typename T>
static void causal_softmax_row(T* a, int t, int Tn, T scale) {
  T maxv = -INFINITY;
  for (int t2 = 0; t2 <= t; ++t2) {
    a[t2] *= scale;
    if (a[t2] > maxv) maxv = a[t2];
  }
  T sum = 0;
  for (int t2 = 0; t2 <= t; ++t2) {
    a[t2] = exp_fast(a[t2] - maxv);
    sum += a[t2];
  }
  for (int t2 = 0; t2 <= t; ++t2) a[t2] /= sum;
  for (int t2 = t + 1; t2 < Tn; ++t2) a[t2] = 0;
}

// Query rows per group of attention_forward: independent rows whose chains of adds interleave.
constexpr int kQueryRows = 8;

template <typename T>
void attention_forward(T* out, T* att, const T* qkv, int B, int Tn, int C, int NH, int NKV) {
  const QkvLayout L(C, NH, NKV);
  const int hs = L.hs;
  const T scale = T(1) / std::sqrt(T(hs));
  for_chunks(B * NH, double(B) * NH * Tn * Tn * hs * 2, [&](int begin, int end) {
    std::vector<T> kt(static_cast<std::size_t>(hs) * Tn), acc(static_cast<std::size_t>(hs) * kQueryRows);
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH, g = L.group(h);
      const long row0 = static_cast<long>(b) * Tn;
      gather_transposed(kt.data(), qkv, row0, L.k(0, g), Tn, L.stride, hs);
      int t = 0;
      for (; t + kQueryRows <= Tn; t += kQueryRows) {
        const T* q[kQueryRows];
        T* a[kQueryRows];
        T* o[kQueryRows];
        int n[kQueryRows];
        for (int r = 0; r < kQueryRows; ++r) {
          q[r] = qkv + L.q(row0 + t + r, h);
          a[r] = att + (static_cast<long>(bh) * Tn + t + r) * Tn;
          o[r] = out + (row0 + t + r) * C + h * hs;
          n[r] = t + r + 1;
        }
        dot_rows_many<kQueryRows>(a, q, kt.data(), t + kQueryRows, Tn, hs);
        for (int r = 0; r < kQueryRows; ++r) causal_softmax_row(a[r], t + r, Tn, scale);
        weighted_rows_many<kQueryRows>(o, acc.data(), a, qkv + L.v(row0, g), n, L.stride, hs);
      }
      for (; t < Tn; ++t) {
        const T* q = qkv + L.q(row0 + t, h);
        T* a = att + (static_cast<long>(bh) * Tn + t) * Tn;
        dot_rows(a, q, kt.data(), t + 1, Tn, hs);
        causal_softmax_row(a, t, Tn, scale);
        weighted_rows(out + (row0 + t) * C + h * hs, acc.data(), a, qkv + L.v(row0, g), t + 1, L.stride, hs);
      }
    }
  });
}

// kKvBlock lanes of T: the scores of one key block, or kKvBlock channels of a value row.
template <typename T>
struct KvLanes {
  typedef T type __attribute__((vector_size(kKvBlock * sizeof(T))));
};

template <typename T>
static typename KvLanes<T>::type load_lanes(const T* p) {
  typename KvLanes<T>::type v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// R runs of kKvBlock lanes, kept in registers: out[r * kKvBlock + l] = sum over k < n, in order,
// of s[k] * x[k * k_stride + r * r_stride + l]. The R runs' chains of adds go side by side (one
// chain alone would wait on each add in turn). Scores: s the query, k a channel, r a key block;
// weighted sums: s the softmax row, k a position, r a run of channels.
template <int R, typename T>
static void lanes_sums(T* out, const T* s, int n, const T* x, long k_stride, long r_stride, bool onto_out = false) {
  typename KvLanes<T>::type acc[R] = {};
  if (onto_out) std::memcpy(acc, out, sizeof acc);  // out += the sums, each term added in order
  for (int k = 0; k < n; ++k) {
    const T sk = s[k];
    for (int r = 0; r < R; ++r) acc[r] += sk * load_lanes(x + k * k_stride + r * r_stride);
  }
  std::memcpy(out, acc, sizeof acc);
}

// dst[i] += sum over t2 < n of w[t2] * x[t2 * stride + i], each term added in order onto dst's
// value. Heads of a whole number of lane runs (up to 8) keep dst in registers; a loop that loads
// and stores dst[i] for every t2 waits on its own store each time (a third of attention's
// backward pass went there).
template <typename T>
static void add_weighted(T* __restrict dst, const T* w, int n, const T* x, long stride, int hs) {
  switch (hs % kKvBlock == 0 ? hs / kKvBlock : 0) {
    case 1: return lanes_sums<1>(dst, w, n, x, stride, kKvBlock, true);
    case 2: return lanes_sums<2>(dst, w, n, x, stride, kKvBlock, true);
    case 4: return lanes_sums<4>(dst, w, n, x, stride, kKvBlock, true);
    case 6: return lanes_sums<6>(dst, w, n, x, stride, kKvBlock, true);
    case 8: return lanes_sums<8>(dst, w, n, x, stride, kKvBlock, true);
    default:
      for (int t2 = 0; t2 < n; ++t2) {
        const T* __restrict row = x + t2 * stride;
        for (int i = 0; i < hs; ++i) dst[i] += w[t2] * row[i];
      }
  }
}

// dst[i] += sum over j of w[j] * x[j][i] for j = j0..rows-1, added in order of j: each element
// gets the terms row j of a group would have added one row after another. A whole group of R
// rows does it with one load and one store for all of them, where rows one at a time make one
// per term.
template <int R, typename T>
static void add_rows(T* __restrict dst, const T (&w)[R], const T* const (&x)[R], int j0, int rows, int hs) {
  if (j0 == 0 && rows == R) {
    for (int i = 0; i < hs; ++i) {
      T acc = dst[i];
      for (int j = 0; j < R; ++j) acc += w[j] * x[j][i];
      dst[i] = acc;
    }
    return;
  }
  for (int j = j0; j < rows; ++j)
    for (int i = 0; i < hs; ++i) dst[i] += w[j] * x[j][i];
}

template <typename T>
void attention_backward(T* dqkv, const T* dout, const T* qkv, const T* att, int B, int Tn, int C,
                        int NH, int NKV) {
  constexpr int R = kQueryRows;
  const QkvLayout L(C, NH, NKV);
  const int hs = L.hs, per_group = NH / NKV;
  const T scale = T(1) / std::sqrt(T(hs));
  for_chunks(B * NKV, double(B) * NH * Tn * Tn * hs * 4, [&](int begin, int end) {
    // Per row of a group: datt (its scores' gradient), then dpre (the pre-softmax gradient).
    std::vector<T> datt(static_cast<std::size_t>(R) * Tn), dpre(static_cast<std::size_t>(R) * Tn),
        vt(static_cast<std::size_t>(hs) * Tn);
    for (int bg = begin; bg < end; ++bg) {
      const int b = bg / NKV, g = bg % NKV;
      const long row0 = static_cast<long>(b) * Tn;
      gather_transposed(vt.data(), qkv, row0, L.v(0, g), Tn, L.stride, hs);
      for (int h = g * per_group; h < (g + 1) * per_group; ++h) {
        const long bh = static_cast<long>(b) * NH + h;
        // Query rows t..t+R'-1 (R' = R, or 1 for the rows past the last whole group), row j seeing
        // keys 0..t+j. Every sum runs over the terms in the order rows one at a time would add
        // them: dv and dk of a key collect row t's term, then row t+1's, and so on.
        for (int t = 0; t < Tn;) {
          const int rows = t + R <= Tn ? R : 1, n = t + rows;
          const T* q[R];
          const T* a[R];
          const T* d[R];
          T* dt[R];
          for (int j = 0; j < rows; ++j) {
            q[j] = qkv + L.q(row0 + t + j, h);
            a[j] = att + (bh * Tn + t + j) * Tn;
            d[j] = dout + (row0 + t + j) * C + h * hs;
            dt[j] = datt.data() + static_cast<long>(j) * Tn;
          }
          // Through out = sum att * v: datt[t2] = v[t2] . d (keys past a row's own are computed
          // and never read), dv[t2] += att[t2] * d.
          if (rows == R) dot_rows_many<R>(dt, d, vt.data(), n, Tn, hs);
          else dot_rows(dt[0], d[0], vt.data(), n, Tn, hs);
          for (int t2 = 0; t2 < n; ++t2) {
            T w[R];
            for (int j = 0; j < rows; ++j) w[j] = a[j][t2];
            T* dv = dqkv + L.v(row0 + t2, g);
            add_rows<R>(dv, w, d, t2 > t ? t2 - t : 0, rows, hs);
          }
          // Through the softmax: dpre = att * (datt - sum(att * datt)); dq += dpre * k.
          for (int j = 0; j < rows; ++j) {
            const int last = t + j;
            T dot = 0;
            for (int t2 = 0; t2 <= last; ++t2) dot += a[j][t2] * dt[j][t2];
            T* pre = dpre.data() + static_cast<long>(j) * Tn;
            for (int t2 = 0; t2 <= last; ++t2) pre[t2] = a[j][t2] * (dt[j][t2] - dot) * scale;
            add_weighted(dqkv + L.q(row0 + last, h), pre, last + 1, qkv + L.k(row0, g), L.stride, hs);
          }
          // dk[t2] += dpre[t2] * q, the group's rows together.
          for (int t2 = 0; t2 < n; ++t2) {
            T w[R];
            for (int j = 0; j < rows; ++j) w[j] = dpre[static_cast<long>(j) * Tn + t2];
            T* dk = dqkv + L.k(row0 + t2, g);
            add_rows<R>(dk, w, q, t2 > t ? t2 - t : 0, rows, hs);
          }
          t += rows;
        }
      }
    }
  });
}

// Stores k and v of T new positions (pos0 onward) of each row in the caches (core/kv_cache.h).
template <typename T>
static void kv_store(T* kcache, T* vcache, const T* qkv, const QkvLayout& L, int B, int Tn, int pos0, int Tmax) {
  for (int b = 0; b < B; ++b)
    for (int t = 0; t < Tn; ++t) {
      const long row = static_cast<long>(b) * Tn + t;
      const int at = pos0 + t;
      for (int g = 0; g < L.NKV; ++g) {
        const T* k = qkv + L.k(row, g);
        const T* v = qkv + L.v(row, g);
        T* kc = kcache + kcache_at(b, g, 0, at, L.NKV, L.hs, Tmax);
        T* vc = vcache + vcache_at(b, g, at, L.NKV, L.hs, Tmax);
        for (int i = 0; i < L.hs; ++i) {
          kc[i * kKvBlock] = k[i];
          vc[i] = v[i];
        }
      }
    }
}

// scores[t2] = q . k[t2] for the positions of the first n keys' blocks, each summed over the
// channels in order as dot_rows sums it (the last block's positions past n are computed from
// whatever the cache holds there and never read).
template <typename T>
static void dot_cached(T* scores, const T* q, const T* kb, int n, int hs) {
  const int blocks = (n + kKvBlock - 1) / kKvBlock;
  const long block = static_cast<long>(hs) * kKvBlock;
  int j = 0;
  for (; j + 4 <= blocks; j += 4) lanes_sums<4>(scores + j * kKvBlock, q, hs, kb + j * block, kKvBlock, block);
  for (; j < blocks; ++j) lanes_sums<1>(scores + j * kKvBlock, q, hs, kb + j * block, kKvBlock, block);
}

// o = sum over the first n positions of a[t2] * v[t2], v the cache's rows of hs values.
// Heads of a whole number of lane runs (up to 8) sum in registers, each channel over t2 in order.
template <typename T>
static void weighted_cached(T* o, T* acc, const T* a, const T* v, int n, int hs) {
  switch (hs % kKvBlock == 0 ? hs / kKvBlock : 0) {
    case 1: return lanes_sums<1>(o, a, n, v, hs, kKvBlock);
    case 2: return lanes_sums<2>(o, a, n, v, hs, kKvBlock);
    case 4: return lanes_sums<4>(o, a, n, v, hs, kKvBlock);
    case 6: return lanes_sums<6>(o, a, n, v, hs, kKvBlock);
    case 8: return lanes_sums<8>(o, a, n, v, hs, kKvBlock);
    default: return weighted_rows(o, acc, a, v, n, hs, hs);
  }
}

// Each score summed over i in order, then the softmax and the weighted sum of v as the rows of
// attention_forward run them, so cached decoding and a batched prefill give the numbers a full
// forward pass gives. Split by (batch, query head) like the forward; the query heads of a kv head
// follow each other, so the second reads that head's keys and values from cache.
template <typename T>
void attention_decode(T* out, T* kcache, T* vcache, const T* qkv, int B, int Tn, int C, int NH, int NKV,
                      int pos0, int Tmax) {
  const QkvLayout L(C, NH, NKV);
  const int hs = L.hs, end_pos = pos0 + Tn;
  const T scale = T(1) / std::sqrt(T(hs));
  kv_store(kcache, vcache, qkv, L, B, Tn, pos0, Tmax);
  for_chunks(B * NH, double(B) * NH * Tn * end_pos * hs * 4, [&](int begin, int end) {
    std::vector<T> a(kv_positions(end_pos)), acc(hs);
    for (int bh = begin; bh < end; ++bh) {
      const int b = bh / NH, h = bh % NH, g = L.group(h);
      const T* kb = kcache + kcache_at(b, g, 0, 0, NKV, hs, Tmax);
      const T* vrows = vcache + vcache_at(b, g, 0, NKV, hs, Tmax);
      for (int t = 0; t < Tn; ++t) {
        const int n = pos0 + t + 1;  // positions this query sees
        const long row = static_cast<long>(b) * Tn + t;
        dot_cached(a.data(), qkv + L.q(row, h), kb, n, hs);
        causal_softmax_row(a.data(), n - 1, n, scale);
        weighted_cached(out + row * C + h * hs, acc.data(), a.data(), vrows, n, hs);
      }
    }
  });
}

template void attention_forward<float>(float*, float*, const float*, int, int, int, int, int);
template void attention_forward<double>(double*, double*, const double*, int, int, int, int, int);
template void attention_backward<float>(float*, const float*, const float*, const float*, int, int, int, int, int);
template void attention_backward<double>(double*, const double*, const double*, const double*, int, int, int, int, int);
template void attention_decode<float>(float*, float*, float*, const float*, int, int, int, int, int, int, int);
template void attention_decode<double>(double*, double*, double*, const double*, int, int, int, int, int, int, int);

}  // namespace revenant::cpu
