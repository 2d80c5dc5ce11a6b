// Launch geometry shared by the CUDA launchers and checkable without a GPU: a grid's y and z
// dimensions stop at 65535 blocks, so a product with more row tiles than that is launched as
// several slices of rows.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace revenant {

constexpr int64_t kMaxGridY = 65535;

struct RowSlice {
  int64_t begin;  // first row
  int rows;       // rows in this slice (at most kMaxGridY * tile)
};

// Consecutive slices covering rows [0, M), each at most kMaxGridY tiles of `tile` rows; 64-bit,
// so any M splits exactly.
inline std::vector<RowSlice> grid_row_slices(int64_t M, int tile) {
  std::vector<RowSlice> out;
  const int64_t most = kMaxGridY * tile;
  for (int64_t begin = 0; begin < M; begin += most)
    out.push_back({begin, static_cast<int>(std::min(M - begin, most))});
  return out;
}

}  // namespace revenant
