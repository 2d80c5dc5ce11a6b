// A backend that wraps another and counts every allocation: how many, the bytes live now, the most
// ever live and the largest single buffer. The native tests measure the memory a model holds with it, where
// the allocator hands it out.
#pragma once
#include <algorithm>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/backend.h"

namespace rvtest {

class CountingBackend final : public revenant::Backend {
 public:
  explicit CountingBackend(std::unique_ptr<revenant::Backend> inner) : inner_(std::move(inner)) {}
  std::string name() const override { return inner_->name(); }
  void* alloc(std::size_t bytes) override {
    void* p = inner_->alloc(bytes);
    sizes_.push_back({p, bytes});
    ++allocs_;
    live_ += bytes;
    peak_ = std::max(peak_, live_);
    largest_ = std::max(largest_, bytes);
    return p;
  }
  void release(void* p) override {
    for (auto it = sizes_.begin(); it != sizes_.end(); ++it)
      if (it->first == p) {
        live_ -= it->second;
        sizes_.erase(it);
        break;
      }
    inner_->release(p);
  }
  void upload(void* d, const void* s, std::size_t n) override { inner_->upload(d, s, n); }
  void download(void* d, const void* s, std::size_t n) override { inner_->download(d, s, n); }
  void zero(void* p, std::size_t n) override { inner_->zero(p, n); }
  void copy(void* d, const void* s, std::size_t n) override { inner_->copy(d, s, n); }
  void synchronize() override { inner_->synchronize(); }
  revenant::MemoryBudget free_memory() override { return inner_->free_memory(); }
  std::size_t attention_scratch_floats(int B, int T, int C, int NH) override {
    return inner_->attention_scratch_floats(B, T, C, NH);
  }
  using RopeScaling = revenant::RopeScaling;  // named unqualified by the op list
#define RV_COUNTING_OP(ret, name, params, args) \
  ret name params override { return inner_->name args; }
  REVENANT_OPS(RV_COUNTING_OP)
#undef RV_COUNTING_OP

  std::size_t live_ = 0, peak_ = 0, largest_ = 0, allocs_ = 0;

 private:
  std::unique_ptr<revenant::Backend> inner_;
  std::vector<std::pair<void*, std::size_t>> sizes_;
};

}  // namespace rvtest
