// The KV cache layout both backends use (attention_decode), per layer, for B rows of Tmax
// positions and NKV kv heads of hs channels:
//  - keys in blocks of kKvBlock positions: [B, NKV, Tmax / kKvBlock, hs, kKvBlock]. A block is hs
//    rows of kKvBlock consecutive positions, so a query's scores over a block are kKvBlock
//    independent sums (one vector register) and the keys a query reads are one contiguous run;
//  - values as rows: [B, NKV, Tmax, hs], again one contiguous run per (row, kv head).
// Tmax is rounded up to whole blocks (kv_positions); the positions past the last stored one are
// never read as scores or weights.
#pragma once
#include <cstddef>

#include "core/host_device.h"

namespace revenant {

constexpr int kKvBlock = 16;

// Positions a cache holds for a request of `positions`: whole blocks.
RV_HD int kv_positions(int positions) { return (positions + kKvBlock - 1) / kKvBlock * kKvBlock; }

// Floats of one layer's key cache (the value cache is the same size) for B rows of `positions`.
inline std::size_t kv_cache_floats(std::size_t B, int positions, int kvC) {
  return B * static_cast<std::size_t>(kv_positions(positions)) * static_cast<std::size_t>(kvC);
}

// Key channel i of position t, row b, kv head g.
RV_HD long kcache_at(int b, int g, int i, int t, int NKV, int hs, int Tmax) {
  const long bg = static_cast<long>(b) * NKV + g;
  return ((bg * (kv_positions(Tmax) / kKvBlock) + t / kKvBlock) * hs + i) * kKvBlock + t % kKvBlock;
}

// The hs values of position t, row b, kv head g.
RV_HD long vcache_at(int b, int g, int t, int NKV, int hs, int Tmax) {
  return ((static_cast<long>(b) * NKV + g) * kv_positions(Tmax) + t) * hs;
}

}  // namespace revenant
