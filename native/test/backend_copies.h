// Copies between host vectors and a backend's memory, for the tests that call backend ops directly.
#pragma once
#include <cstddef>
#include <vector>

#include "core/backend.h"

namespace rvtest {

// A new buffer on be holding h (a byte more than h, so that no allocation is of zero bytes).
template <typename T>
T* put(revenant::Backend& be, const std::vector<T>& h) {
  T* p = static_cast<T*>(be.alloc(h.size() * sizeof(T) + 1));
  be.upload(p, h.data(), h.size() * sizeof(T));
  return p;
}

// The first n values at p on be.
template <typename T>
std::vector<T> get(revenant::Backend& be, const T* p, std::size_t n) {
  std::vector<T> h(n);
  be.download(h.data(), p, n * sizeof(T));
  return h;
}

}  // namespace rvtest
