// The keep/drop decision of LoRA dropout, shared by the CPU reference and the CUDA mirror: a pure
// function of (seed, stream, row, column) through Philox, so the backward regenerates the forward's
// mask instead of storing it, and every backend and thread count drops the same entries.
#pragma once
#include <cstdint>

#include "core/philox.h"

namespace revenant {

// Whether entry (n, c) of dropout stream `stream` (one per adapter: layer * modules + module) is
// kept at drop probability p.
RV_HD bool dropout_keep(uint64_t seed, int stream, int n, int c, float p) {
  const Philox4 r = philox4x32(seed, static_cast<uint32_t>(n), static_cast<uint32_t>(c), static_cast<uint32_t>(stream), 0xD20Fu);
  return philox_uniform(r.v[0]) >= p;
}

}  // namespace revenant
