// Fixed-size thread pool behind parallel_for(). Threads sleep on a condition variable between
// calls, so they cost nothing while BLAS or another library runs its own threads.
#include "core/thread_pool.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "core/threads.h"

namespace revenant {
namespace {

class Pool {
 public:
  explicit Pool(int n) : size_(n) {
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return size_; }

  // Caller holds busy_. Thread i runs tasks [i*n/size, (i+1)*n/size).
  void run(int n, const std::function<void(int)>& fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      fn_ = &fn;
      n_ = n;
      pending_ = size_ - 1;
      ++generation_;
    }
    wake_.notify_all();
    run_range(0, n, fn);
    std::unique_lock<std::mutex> lock(mu_);
    done_.wait(lock, [this] { return pending_ == 0; });
    fn_ = nullptr;
  }

  std::mutex busy;

 private:
  void run_range(int i, int n, const std::function<void(int)>& fn) {
    const int begin = static_cast<int>(static_cast<long long>(i) * n / size_);
    const int end = static_cast<int>(static_cast<long long>(i + 1) * n / size_);
    for (int t = begin; t < end; ++t) fn(t);
  }
  void loop(int i) {
    unsigned long seen = 0;
    for (;;) {
      const std::function<void(int)>* fn;
      int n;
      {
        std::unique_lock<std::mutex> lock(mu_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        fn = fn_;
        n = n_;
      }
      run_range(i, n, *fn);
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_, done_;
  const std::function<void(int)>* fn_ = nullptr;
  int n_ = 0;
  int pending_ = 0;
  unsigned long generation_ = 0;
  bool stop_ = false;
};

Pool& pool() {
  static Pool p(num_threads());
  return p;
}

}  // namespace

int pool_threads() { return pool().size(); }

void parallel_for(int n, const std::function<void(int task)>& fn) {
  if (n <= 0) return;
  Pool& p = pool();
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
