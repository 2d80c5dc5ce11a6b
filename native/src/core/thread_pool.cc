// Fixed-size thread pool behind parallel_for(). Tasks are claimed dynamically from one atomic
// counter, so a thread that the OS delays (a busy machine) does not hold the others up; results
// do not depend on which thread runs a task because every task owns disjoint outputs. Between
// calls, threads spin (yielding) for up to 20 us and then sleep on a condition variable. The pool
// is rebuilt when the process changes its thread count (set_num_threads).
#include "core/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/threads.h"

namespace revenant {
namespace {

// The model issues ops back to back, and a thread that went to sleep takes longer to wake than a
// small op takes to run; but several actor processes share the cores, and a long spin burns the
// time another process's threads could compute in. 20 us covers the gap between two ops of one
// call and gives the core back soon after a call ends.
constexpr auto kSpin = std::chrono::microseconds(20);

// Spins (yielding the core) until pred() holds or kSpin passes; returns pred().
template <typename P>
bool spin_until(P&& pred) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0;; ++i) {
    if (pred()) return true;
    std::this_thread::yield();
    if ((i & 15) == 15 && std::chrono::steady_clock::now() - start > kSpin) return pred();
  }
}

class Pool {
 public:
  explicit Pool(int n) : size_(n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return size_; }

  // Caller holds busy.
  void run(int n, const std::function<void(int)>& fn) {
    uint32_t gen;
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      done_count_.store(0);
      gen = static_cast<uint32_t>(generation_.load() + 1);
      next_.store(static_cast<uint64_t>(gen) << 32);  // (generation, next task index)
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    work(gen, n, fn);
    auto finished = [&] { return done_count_.load(std::memory_order_acquire) == n; };
    if (!spin_until(finished)) {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, finished);
    }
  }

  std::mutex busy;

 private:
  // Claims and runs tasks of generation gen until none are left. Claims carry the generation, so
  // a thread that wakes late can never take a task of a later call.
  void work(uint32_t gen, int n, const std::function<void(int)>& fn) {
    for (;;) {
      uint64_t v = next_.load();
      int task;
      do {
        if (static_cast<uint32_t>(v >> 32) != gen) return;
        task = static_cast<int>(v & 0xffffffffu);
        if (task >= n) return;
      } while (!next_.compare_exchange_weak(v, v + 1));
      fn(task);
      if (done_count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lock(mu_);
        done_.notify_all();
      }
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(fresh)) {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, fresh);
      }
      const std::function<void(int)>* fn;
      int n;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        seen = generation_.load();
        fn = fn_;
        n = n_;
      }
      work(static_cast<uint32_t>(seen), n, *fn);
    }
  }

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
  std::atomic<uint64_t> next_{0};
  std::atomic<int> done_count_{0};
  std::atomic<uint64_t> generation_{0};
  bool stop_ = false;
};

// The pool at the current thread count. A caller keeps the pool it got alive while it runs, so a
// rebuild (another thread count set meanwhile) never pulls threads from under a running loop.
std::shared_ptr<Pool> pool() {
  static std::mutex mu;
  static std::shared_ptr<Pool> current;
  std::lock_guard<std::mutex> lock(mu);
  const int want = num_threads();
  if (!current || current->size() != want) current = std::make_shared<Pool>(want);
  return current;
}

}  // namespace

int pool_threads() { return pool()->size(); }

void parallel_for(int n, const std::function<void(int task)>& fn) {
  if (n <= 0) return;
  const std::shared_ptr<Pool> shared = pool();
  Pool& p = *shared;
  if (n == 1 || p.size() == 1) {
    for (int t = 0; t < n; ++t) fn(t);
    return;
  }
  std::unique_lock<std::mutex> lock(p.busy, std::try_to_lock);
  if (!lock.owns_lock()) {
    for (int t = 0; t < n; ++t) fn(t);
    return;
  }
  p.run(n, fn);
}

}  // namespace revenant
