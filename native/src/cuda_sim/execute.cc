// The CUDA emulator's executor: runs a launch's blocks one after another on the launching host
// thread, each block's threads as fibers on their own stacks, switched cooperatively.
//
// Scheduling. A thread runs until it exits or waits: at __syncthreads (the barrier opens when
// every thread of the block that has not exited has arrived) or in a warp collective (shuffles,
// votes, __syncwarp, wmma::mma_sync: it completes when every lane of its mask has arrived, and the
// last lane to arrive computes every lane's result). Ready threads run in a fixed order, so a launch
// does the same thing every time. A block whose threads all wait with none ready is a deadlock.
//
// Checks, like compute-sanitizer's. The kernel files are compiled with GCC's thread-sanitizer
// instrumentation but without its runtime: every load and store of kernel code calls the
// __tsan_readN / __tsan_writeN hooks defined here, which classify the address:
//   - the running fiber's stack, or the launching thread's stack (where the launch keeps the
//     kernel's parameters): private, not checked;
//   - the thread_local block of this module, where __shared__ variables live: shared memory, put
//     through the race check (racecheck: two threads touch a byte with no barrier between, one of
//     them writing; threads of one warp are ordered by __syncwarp only), the initialisation check
//     (initcheck: a read of a byte no thread of the block has written) and the bounds of the
//     launch's dynamic shared size (memcheck);
//   - inside a cudaMalloc'd range (its requested size): global memory; a store races with another
//     thread's store to the same address in the launch unless a barrier of their block orders them;
//   - anything else: memcheck reports an invalid global access and the kernel stops there, with
//     cudaErrorIllegalAddress, sticky, as a device would.
// Each report names the check, kernel, block, thread and address (cuda_sim::take_findings()).
#include <link.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_sim/device.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define RV_SIM_ASAN 1
#endif

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace cuda_sim {

// Storage of `extern __shared__` arrays (dynamic_shared.cc): this host thread's address of each,
// and their capacity in bytes.
void dynamic_shared_arrays(std::vector<std::pair<uintptr_t, std::size_t>>& out);

namespace {

constexpr std::size_t kStackBytes = 256 * 1024;  // kernel frames are small; UBSan and helpers add some
constexpr int kMaxReportsPerLaunch = 8;

// ---- context switch ------------------------------------------------------------------------------

#if defined(__x86_64__)
// Saves the callee-saved registers and the SSE/x87 control words on the current stack, stores the
// stack pointer in *save and continues on `next` (a stack prepared the same way).
extern "C" void cuda_sim_switch(void** save, void* next);
extern "C" void cuda_sim_fiber_start();
asm(R"(
  .text
  .globl cuda_sim_switch
  .hidden cuda_sim_switch
  .type cuda_sim_switch,@function
cuda_sim_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $16, %rsp
  stmxcsr 8(%rsp)
  fnstcw (%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr 8(%rsp)
  fldcw (%rsp)
  addq $16, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuda_sim_switch, .-cuda_sim_switch

  .globl cuda_sim_fiber_start
  .hidden cuda_sim_fiber_start
  .type cuda_sim_fiber_start,@function
cuda_sim_fiber_start:
  movq %r12, %rdi
  callq *%r13
  ud2
  .size cuda_sim_fiber_start, .-cuda_sim_fiber_start
)");
#endif

enum class State : uint8_t { Ready, Barrier, Warp, Exited };
enum class Op : uint8_t { Shuffle, Vote, SyncWarp, Mma };

struct Thread {
  void* sp = nullptr;  // saved stack pointer while switched out
#if !defined(__x86_64__)
  ucontext_t context;
#endif
  char* stack = nullptr;
  void* fake_stack = nullptr;  // AddressSanitizer's bookkeeping of this stack
  uint3 idx{};
  int linear = 0, warp = 0, lane = 0;
  State state = State::Ready;
  // The warp collective this thread waits in.
  Op op = Op::Shuffle;
  int kind = 0, arg = 0, width = 32;
  unsigned mask = 0;
  uint64_t value = 0, result = 0;
  const unsigned short *mma_a = nullptr, *mma_b = nullptr;
  const float* mma_c = nullptr;
  float* mma_d = nullptr;
  int predicate = 0;
};

struct Pending {  // a warp collective some lanes have entered
  unsigned mask, arrived;
  Op op;
};

struct Warp {
  unsigned exists = 0, live = 0;  // lanes in the block / not yet exited
  uint32_t epoch = 0;             // __syncwarp count, for the race check
  std::vector<Pending> pending;
};

// What the race and initialisation checks remember of one shared byte.
struct Shadow {
  uint32_t w_epoch = 0, r_epoch = 0;    // block epochs of the last write and of the reads since it
  uint32_t w_wepoch = 0, r_wepoch = 0;  // warp epochs of those (the latest read's)
  uint32_t init_block = 0;              // the block (generation) that last wrote it
  uint32_t touch_launch = 0;            // the launch that last touched it (static size)
  uint16_t writer = 0, reader = 0;      // linear thread ids
  uint8_t readers = 0;                  // 0 none, 1 one thread, 2 several of one warp, 3 several warps
};

struct Exec {
  const KernelRun* run = nullptr;
  uint3 block{};
  int nthreads = 0;
  std::vector<Thread> threads;
  std::vector<Warp> warps;
  std::vector<int> ready;
  std::size_t ready_head = 0;
  Thread* current = nullptr;
  void* sched_sp = nullptr;
#if !defined(__x86_64__)
  ucontext_t sched_context;
#endif
  void* sched_fake = nullptr;
  const void* sched_bottom = nullptr;
  std::size_t sched_size = 0;
  int live = 0, at_barrier = 0;
  const char* barrier_site = nullptr;
  int barrier_op = 0;
  std::set<const char*> barriers_run;  // plain __syncthreads() sites reached in this launch
  const char* removed_barrier = nullptr;  // "file.cu:line" of the barrier the sweep removes, or null
  bool aborted = false;
  cudaError_t abort_error = cudaSuccess;
  int reports = 0, reports_dropped = 0;
  std::vector<char*> stacks;
  // shared memory window: this module's thread_local block on this host thread
  uintptr_t tls_lo = 0, tls_hi = 0;
  std::vector<std::pair<uintptr_t, std::size_t>> dynamic;
  std::vector<Shadow> shadow;
  uint32_t epoch = 0, block_gen = 0, launch_gen = 0;
  std::size_t static_touched = 0;
  bool static_reported = false;
  uintptr_t host_lo = 0, host_hi = 0;
  // Global stores of this launch by address: who wrote, for the write-write race check.
  struct GlobalWrite {
    uint32_t block;    // linear block index
    uint32_t epoch;    // block epoch of the write
    uint32_t wepoch;   // the writer's warp epoch
    uint16_t thread;   // linear thread id
  };
  std::unordered_map<uintptr_t, GlobalWrite> global_writes;
  uint32_t block_linear = 0;
  const Allocation* last_alloc = nullptr;
};

thread_local Exec* t_exec = nullptr;

// ---- reports -------------------------------------------------------------------------------------

std::string coords(uint3 v) {
  return "(" + std::to_string(v.x) + "," + std::to_string(v.y) + "," + std::to_string(v.z) + ")";
}

std::string hex(uintptr_t p) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%" PRIxPTR, p);
  return b;
}

uint3 thread_coords(const Exec& e, int linear) {
  const dim3 b = e.run->block;
  return {linear % b.x, (linear / b.x) % b.y, linear / (b.x * b.y)};
}

// One report: "<check>: kernel K, block B, thread T: what". At most a few per launch are kept.
void report(Exec& e, const char* check, const Thread* t, const std::string& what) {
  if (e.reports >= kMaxReportsPerLaunch) {
    ++e.reports_dropped;
    return;
  }
  ++e.reports;
  std::string text = std::string(check) + ": kernel " + e.run->name + ", block " + coords(e.block);
  if (t) text += ", thread " + coords(t->idx);
  add_finding(text + ": " + what);
}

[[noreturn]] void outside_kernel(const char* what) {
  std::fprintf(stderr, "cuda_sim: %s used outside a running kernel\n", what);
  std::abort();
}

Exec& exec(const char* what) {
  Exec* e = t_exec;
  if (e == nullptr || e->current == nullptr) outside_kernel(what);
  return *e;
}

// ---- fibers --------------------------------------------------------------------------------------

void switch_to_scheduler(Exec& e, Thread& t, bool exiting) {
#ifdef RV_SIM_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &t.fake_stack, e.sched_bottom, e.sched_size);
#else
  (void)exiting;
#endif
#if defined(__x86_64__)
  cuda_sim_switch(&t.sp, e.sched_sp);
#else
  swapcontext(&t.context, &e.sched_context);
#endif
#ifdef RV_SIM_ASAN
  __sanitizer_finish_switch_fiber(t.fake_stack, nullptr, nullptr);
#endif
}

void switch_to_thread(Exec& e, Thread& t) {
  e.current = &t;
#ifdef RV_SIM_ASAN
  __sanitizer_start_switch_fiber(&e.sched_fake, t.stack, kStackBytes);
#endif
#if defined(__x86_64__)
  cuda_sim_switch(&e.sched_sp, t.sp);
#else
  swapcontext(&e.sched_context, &t.context);
#endif
#ifdef RV_SIM_ASAN
  __sanitizer_finish_switch_fiber(e.sched_fake, nullptr, nullptr);
#endif
  e.current = nullptr;
}

extern "C" void cuda_sim_fiber_main(Thread* t) {
  Exec& e = *t_exec;
#ifdef RV_SIM_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &e.sched_bottom, &e.sched_size);
#endif
  e.run->entry(e.run->context);
  t->state = State::Exited;
  switch_to_scheduler(e, *t, true);
  __builtin_unreachable();
}

#if !defined(__x86_64__)
void fiber_trampoline(unsigned hi, unsigned lo) {
  cuda_sim_fiber_main(reinterpret_cast<Thread*>((static_cast<uintptr_t>(hi) << 32) | lo));
}
#endif

char* new_stack() {
  const std::size_t page = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  void* m = mmap(nullptr, kStackBytes + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) {
    std::fprintf(stderr, "cuda_sim: cannot map a %zu-byte fiber stack\n", kStackBytes);
    std::abort();
  }
  mprotect(m, page, PROT_NONE);  // guard page: a runaway kernel frame faults instead of corrupting
  return static_cast<char*>(m) + page;
}

void prepare(Exec& e, Thread& t) {
#if defined(__x86_64__)
  // The frame cuda_sim_switch pops: control words, r15, r14, r13 (entry), r12 (argument), rbx,
  // rbp, then the return address; the entry then runs on a 16-byte aligned stack.
  const uintptr_t top = (reinterpret_cast<uintptr_t>(t.stack) + kStackBytes) & ~uintptr_t(15);
  auto* s = reinterpret_cast<uint64_t*>(top - 88);
  uint32_t mxcsr;
  uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  s[0] = fpcw;
  s[1] = mxcsr;
  s[2] = 0;                                                    // r15
  s[3] = 0;                                                    // r14
  s[4] = reinterpret_cast<uint64_t>(&cuda_sim_fiber_main);     // r13
  s[5] = reinterpret_cast<uint64_t>(&t);                       // r12
  s[6] = 0;                                                    // rbx
  s[7] = 0;                                                    // rbp
  s[8] = reinterpret_cast<uint64_t>(&cuda_sim_fiber_start);    // return address
  t.sp = s;
  (void)e;
#else
  getcontext(&t.context);
  t.context.uc_stack.ss_sp = t.stack;
  t.context.uc_stack.ss_size = kStackBytes;
  t.context.uc_link = &e.sched_context;
  const uintptr_t p = reinterpret_cast<uintptr_t>(&t);
  makecontext(&t.context, reinterpret_cast<void (*)()>(fiber_trampoline), 2, static_cast<unsigned>(p >> 32),
              static_cast<unsigned>(p));
#endif
}

// ---- scheduling ----------------------------------------------------------------------------------

void make_ready(Exec& e, Thread& t) {
  t.state = State::Ready;
  e.ready.push_back(t.linear);
}

// Parks the running thread until another makes it ready; aborts never return.
void wait(Exec& e, Thread& t) {
  switch_to_scheduler(e, t, false);
}

// Stops the kernel at this thread: the launch ends with `error`, and no thread runs again.
[[noreturn]] void abort_kernel(Exec& e, Thread& t, cudaError_t error) {
  e.aborted = true;
  e.abort_error = error;
  switch_to_scheduler(e, t, true);
  __builtin_unreachable();
}

void open_barrier(Exec& e) {
  ++e.epoch;
  e.at_barrier = 0;
  e.barrier_site = nullptr;
  for (Thread& t : e.threads)
    if (t.state == State::Barrier) make_ready(e, t);
}

unsigned lane_bit(int lane) { return 1u << lane; }

// Computes every arrived lane's result of a complete collective and wakes the waiting lanes.
void complete(Exec& e, int w, std::size_t index, Thread* completer) {
  Warp& warp = e.warps[w];
  const Pending g = warp.pending[index];
  warp.pending.erase(warp.pending.begin() + static_cast<long>(index));
  Thread* lanes[32] = {};
  for (int l = 0; l < 32; ++l)
    if (g.arrived & lane_bit(l)) lanes[l] = &e.threads[w * 32 + l];
  switch (g.op) {
    case Op::SyncWarp:
      ++warp.epoch;
      break;
    case Op::Vote: {
      unsigned ballot = 0;
      for (int l = 0; l < 32; ++l)
        if (lanes[l] && lanes[l]->predicate) ballot |= lane_bit(l);
      for (int l = 0; l < 32; ++l) {
        if (!lanes[l]) continue;
        const int kind = lanes[l]->kind;  // 0 ballot, 1 any, 2 all
        lanes[l]->result = kind == 0 ? ballot : kind == 1 ? (ballot != 0) : (ballot == g.arrived);
      }
      break;
    }
    case Op::Shuffle:
      for (int l = 0; l < 32; ++l) {
        Thread* t = lanes[l];
        if (!t) continue;
        const int width = t->width, base = l / width * width, pos = l % width;
        int src = l;
        switch (t->kind) {
          case 0: src = base + ((t->arg % width) + width) % width; break;           // index
          case 1: src = (l ^ t->arg) / width == l / width ? (l ^ t->arg) : l; break;  // xor
          case 2: src = pos + t->arg < width ? l + t->arg : l; break;                // down
          case 3: src = pos - t->arg >= 0 ? l - t->arg : l; break;                   // up
        }
        if (src < 0 || src > 31 || !lanes[src]) {
          report(e, "synccheck", t,
                 "a shuffle reads lane " + std::to_string(src) + ", which is not in its mask " + hex(g.mask));
          t->result = t->value;
        } else {
          t->result = lanes[src]->value;
        }
      }
      break;
    case Op::Mma: {
      // Tiles as row-major 16x16: lane l holds elements 8l..8l+7 (see mma.h).
      float a[256], b[256], c[256];
      for (int l = 0; l < 32; ++l)
        for (int i = 0; i < 8; ++i) {
          const uint32_t ab = static_cast<uint32_t>(lanes[l]->mma_a[i]) << 16,
                         bb = static_cast<uint32_t>(lanes[l]->mma_b[i]) << 16;
          std::memcpy(&a[l * 8 + i], &ab, 4);
          std::memcpy(&b[l * 8 + i], &bb, 4);
          c[l * 8 + i] = lanes[l]->mma_c[i];
        }
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 16; ++n) {
          float s = c[m * 16 + n];
          for (int k = 0; k < 16; ++k) s += a[m * 16 + k] * b[k * 16 + n];  // bf16 products are exact in fp32
          const int e_ = m * 16 + n;
          lanes[e_ / 8]->mma_d[e_ % 8] = s;  // only lane e/8 owns d's element e; written once
        }
      // Every lane's d gets its own eight; the loop above wrote each exactly once.
      break;
    }
  }
  for (int l = 0; l < 32; ++l)
    if (lanes[l] && lanes[l] != completer) make_ready(e, *lanes[l]);
}

// Enters a warp collective with the running thread; returns once every lane of the mask has.
void collective(Exec& e, Thread& t, Op op, unsigned mask) {
  Warp& w = e.warps[t.warp];
  const unsigned me = lane_bit(t.lane);
  if (!(mask & me)) {
    report(e, "synccheck", &t, "a warp collective whose mask " + hex(mask) + " leaves out the calling lane");
    mask |= me;
  }
  if (mask & ~w.live) {
    report(e, "synccheck", &t,
           "a warp collective's mask " + hex(mask) + " names lanes that " +
               ((mask & ~w.exists) ? "the block does not have" : "have exited") + " (live lanes " + hex(w.live) + ")");
    mask &= w.live;
  }
  t.op = op;
  t.mask = mask;
  std::size_t index = w.pending.size();
  for (std::size_t i = 0; i < w.pending.size(); ++i) {
    Pending& g = w.pending[i];
    if (g.mask == mask && !(g.arrived & me)) {
      index = i;
      break;
    }
    if (g.mask & me)
      report(e, "synccheck", &t,
             "divergent warp collectives: mask " + hex(mask) + " entered while lanes " + hex(g.arrived) +
                 " wait in one with mask " + hex(g.mask));
  }
  if (index == w.pending.size()) w.pending.push_back({mask, 0, op});
  Pending& g = w.pending[index];
  if (g.op != op)
    report(e, "synccheck", &t, "lanes of one warp meet in different collectives (shuffle, vote, __syncwarp, mma_sync)");
  g.arrived |= me;
  if ((g.arrived & (g.mask & w.live)) == (g.mask & w.live)) {
    complete(e, t.warp, index, &t);
    return;
  }
  t.state = State::Warp;
  wait(e, t);
}

// A lane exited: collectives that named it can never see it arrive.
void lane_exited(Exec& e, Thread& t) {
  Warp& w = e.warps[t.warp];
  w.live &= ~lane_bit(t.lane);
  for (std::size_t i = 0; i < w.pending.size();) {
    Pending& g = w.pending[i];
    if ((g.mask & lane_bit(t.lane)) && !(g.arrived & lane_bit(t.lane)))
      report(e, "synccheck", &t, "exited while lanes " + hex(g.arrived) + " wait for it in a warp collective");
    if (g.arrived && (g.arrived & (g.mask & w.live)) == (g.mask & w.live)) {
      complete(e, t.warp, i, nullptr);
      continue;
    }
    ++i;
  }
}

std::string describe_waits(Exec& e) {
  int barrier = 0, warp = 0;
  std::string example;
  for (Thread& t : e.threads) {
    if (t.state == State::Barrier) ++barrier;
    if (t.state == State::Warp) {
      if (warp++ == 0) example = " (e.g. thread " + coords(t.idx) + ", mask " + hex(t.mask) + ")";
    }
  }
  return std::to_string(barrier) + " threads wait at __syncthreads" +
         (e.barrier_site ? std::string(" (") + e.barrier_site + ")" : std::string()) + ", " + std::to_string(warp) +
         " in warp collectives" + example;
}

// Runs one block to its end (or to an abort).
void run_block(Exec& e) {
  const int n = e.nthreads;
  e.threads.assign(static_cast<std::size_t>(n), Thread{});
  e.warps.assign(static_cast<std::size_t>((n + 31) / 32), Warp{});
  while (e.stacks.size() < static_cast<std::size_t>(n)) e.stacks.push_back(new_stack());
  e.ready.clear();
  e.ready_head = 0;
  for (int i = 0; i < n; ++i) {
    Thread& t = e.threads[i];
    t.stack = e.stacks[i];
    t.linear = i;
    t.idx = thread_coords(e, i);
    t.warp = i / 32;
    t.lane = i % 32;
    e.warps[t.warp].exists |= lane_bit(t.lane);
    prepare(e, t);
    e.ready.push_back(i);
  }
  for (Warp& w : e.warps) w.live = w.exists;
  e.live = n;
  e.at_barrier = 0;
  e.barrier_site = nullptr;
  ++e.epoch;
  ++e.block_gen;
  while (e.ready_head < e.ready.size()) {
    Thread& t = e.threads[e.ready[e.ready_head++]];
    if (e.ready_head > 4096 && e.ready_head * 2 > e.ready.size()) {  // keep the queue short
      e.ready.erase(e.ready.begin(), e.ready.begin() + static_cast<long>(e.ready_head));
      e.ready_head = 0;
    }
    switch_to_thread(e, t);
    if (e.aborted) return;
    if (t.state == State::Exited) {
      --e.live;
      lane_exited(e, t);
      if (e.at_barrier > 0 && e.at_barrier == e.live) open_barrier(e);
    }
  }
  if (e.live > 0) {
    report(e, "synccheck", nullptr, "deadlock: no thread can go on: " + describe_waits(e));
    e.aborted = true;
    e.abort_error = cudaErrorLaunchTimeout;  // a device would hang until the watchdog
  }
}

// ---- the shared-memory window --------------------------------------------------------------------

struct TlsSearch {
  uintptr_t code;
  uintptr_t lo = 0, size = 0;
};

int find_tls(dl_phdr_info* info, std::size_t, void* data) {
  auto* s = static_cast<TlsSearch*>(data);
  bool mine = false;
  std::size_t tls = 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    const uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD && s->code >= lo && s->code < lo + ph.p_memsz) mine = true;
    if (ph.p_type == PT_TLS) tls = ph.p_memsz;
  }
  if (!mine) return 0;
  s->lo = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
  s->size = tls;
  return 1;
}

void init_exec(Exec& e) {
  TlsSearch s{reinterpret_cast<uintptr_t>(&find_tls)};
  dl_iterate_phdr(find_tls, &s);
  if (s.lo == 0 || s.size == 0) {
    std::fprintf(stderr, "cuda_sim: cannot find this module's thread-local block (shared memory)\n");
    std::abort();
  }
  e.tls_lo = s.lo;
  e.tls_hi = s.lo + s.size;
  e.shadow.assign(s.size, Shadow{});
  dynamic_shared_arrays(e.dynamic);
  for (const auto& d : e.dynamic)
    if (d.first < e.tls_lo || d.first + d.second > e.tls_hi) {
      std::fprintf(stderr, "cuda_sim: dynamic shared storage lies outside the thread-local block\n");
      std::abort();
    }
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) == 0) {
    void* lo = nullptr;
    std::size_t size = 0;
    pthread_attr_getstack(&attr, &lo, &size);
    e.host_lo = reinterpret_cast<uintptr_t>(lo);
    e.host_hi = e.host_lo + size;
    pthread_attr_destroy(&attr);
  }
}

Exec& host_exec() {
  if (t_exec == nullptr) {
    t_exec = new Exec;  // one per host thread that launches; lives as long as the thread's storage
    init_exec(*t_exec);
  }
  return *t_exec;
}

// ---- checks --------------------------------------------------------------------------------------

enum class Access { Read, Write, Atomic };

const char* access_name(Access a) { return a == Access::Read ? "read" : a == Access::Write ? "write" : "atomic"; }

void check_shared(Exec& e, Thread& t, uintptr_t p, std::size_t n, Access kind) {
  if (p + n > e.tls_hi) {
    report(e, "memcheck", &t, std::string("shared ") + access_name(kind) + " of " + std::to_string(n) +
                                  " bytes at " + hex(p) + " runs past the shared memory window");
    abort_kernel(e, t, cudaErrorIllegalAddress);
  }
  bool dynamic = false;
  for (const auto& d : e.dynamic) {
    if (p + n <= d.first || p >= d.first + d.second) continue;
    dynamic = true;
    if (p + n > d.first + e.run->shared_bytes) {
      report(e, "memcheck", &t,
             std::string("invalid shared ") + access_name(kind) + " of " + std::to_string(n) + " bytes at " + hex(p) +
                 ": byte " + std::to_string(p + n - 1 - d.first) + " of the dynamic shared memory, which has " +
                 std::to_string(e.run->shared_bytes) + " bytes in this launch");
      abort_kernel(e, t, cudaErrorIllegalAddress);
    }
  }
  const uint16_t me = static_cast<uint16_t>(t.linear);
  const uint32_t wepoch = e.warps[t.warp].epoch;
  auto ordered = [&](uint16_t other, uint32_t other_wepoch) {
    return other == me || (other / 32 == t.warp && other_wepoch < wepoch);
  };
  bool reported = false;  // one report per access, but every byte's state kept up to date
  for (std::size_t i = 0; i < n; ++i) {
    Shadow& s = e.shadow[p + i - e.tls_lo];
    if (!dynamic && s.touch_launch != e.launch_gen) {
      s.touch_launch = e.launch_gen;
      if (++e.static_touched > kStaticSharedLimit && !e.static_reported) {
        e.static_reported = true;
        report(e, "memcheck", &t, "the kernel uses more than 48 KiB of static shared memory");
      }
    }
    if (kind == Access::Atomic) {
      s.init_block = e.block_gen;
      continue;
    }
    const char* hazard = nullptr;
    uint16_t other = 0;
    if (kind == Access::Read) {
      if (s.init_block != e.block_gen) {
        report(e, "initcheck", &t,
               "read of " + std::to_string(n) + " bytes at shared " + hex(p) + " that no thread of the block has written");
        s.init_block = e.block_gen;  // one report per byte
      }
      if (s.w_epoch == e.epoch && !ordered(s.writer, s.w_wepoch)) {
        hazard = "read-after-write";
        other = s.writer;
      }
      if (s.r_epoch != e.epoch || s.readers == 0) {
        s.r_epoch = e.epoch;
        s.reader = me;
        s.readers = 1;
      } else if (s.reader != me) {
        s.readers = std::max<uint8_t>(s.readers, s.reader / 32 == t.warp ? 2 : 3);
      }
      s.r_wepoch = std::max(s.r_wepoch, wepoch);
      if (s.readers == 1) s.r_wepoch = wepoch;
    } else {
      if (s.w_epoch == e.epoch && !ordered(s.writer, s.w_wepoch)) {
        hazard = "write-after-write";
        other = s.writer;
      } else if (s.r_epoch == e.epoch && s.readers != 0) {
        const bool unordered = s.readers == 3 || (s.reader / 32 != t.warp) ||
                               (s.readers == 2 && s.r_wepoch >= wepoch) ||
                               (s.readers == 1 && !ordered(s.reader, s.r_wepoch));
        if (unordered) {
          hazard = "write-after-read";
          other = s.reader;
        }
      }
      s.w_epoch = e.epoch;
      s.w_wepoch = wepoch;
      s.writer = me;
      s.readers = 0;
      s.init_block = e.block_gen;
    }
    if (hazard && !reported) {
      reported = true;
      report(e, "racecheck", &t,
             std::string(hazard) + " hazard on shared byte " + hex(p + i) + ": this thread's " + access_name(kind) +
                 " and thread " + coords(thread_coords(e, other)) +
                 "'s earlier access have no __syncthreads between them" +
                 (other / 32 == t.warp ? " (same warp: nor __syncwarp)" : ""));
    }
  }
}

// A global access outside every allocation, described with the allocation nearest to it.
void report_invalid_global(Exec& e, const Thread& t, uintptr_t p, std::size_t n, Access kind) {
  std::string where = "outside every cudaMalloc'd range";
  const Allocation* near = device().nearest(p);
  constexpr uintptr_t kNear = 1 << 20;  // further away, naming an allocation would mislead
  if (near && (p + kNear < near->begin || p > near->begin + near->bytes + kNear)) near = nullptr;
  if (near) {
    const uintptr_t end = near->begin + near->bytes;
    if (p >= end)
      where += "; " + std::to_string(p - end) + " bytes past the end of the " + std::to_string(near->bytes) +
               "-byte allocation at " + hex(near->begin);
    else if (p + n > end)
      where += "; runs " + std::to_string(p + n - end) + " bytes past the end of the " +
               std::to_string(near->bytes) + "-byte allocation at " + hex(near->begin);
    else
      where += "; " + std::to_string(near->begin - p) + " bytes before the allocation at " + hex(near->begin);
  }
  report(e, "memcheck", &t,
         std::string("invalid global ") + access_name(kind) + " of " + std::to_string(n) + " bytes at " + hex(p) +
             " (" + where + ")");
}

// A global store: two threads of a launch storing to the same address race unless they are of one
// block with a barrier between them (or of one warp with a __syncwarp between); atomics never race.
void check_global_write(Exec& e, Thread& t, uintptr_t p) {
  const Exec::GlobalWrite now{e.block_linear, e.epoch, e.warps[t.warp].epoch, static_cast<uint16_t>(t.linear)};
  auto [it, fresh] = e.global_writes.try_emplace(p, now);
  if (fresh) return;
  const Exec::GlobalWrite before = it->second;
  it->second = now;
  if (before.block == now.block &&
      (before.thread == now.thread || before.epoch != now.epoch ||
       (before.thread / 32 == t.warp && before.wepoch < now.wepoch)))
    return;
  const dim3 g = e.run->grid;
  const uint3 other_block{before.block % g.x, (before.block / g.x) % g.y, before.block / (g.x * g.y)};
  report(e, "racecheck", &t,
         "write-after-write hazard on global " + hex(p) + ": thread " + coords(thread_coords(e, before.thread)) +
             " of block " + coords(other_block) + " also stored there in this launch" +
             (before.block == now.block ? " with no __syncthreads between" : " (blocks are not ordered)"));
}

void check_access(void* addr, std::size_t n, Access kind) {
  Exec* ep = t_exec;
  if (ep == nullptr || ep->current == nullptr) return;  // host code of a kernel file
  Exec& e = *ep;
  Thread& t = *e.current;
  const uintptr_t p = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t stack = reinterpret_cast<uintptr_t>(t.stack);
  if (p >= stack && p < stack + kStackBytes) return;
  if (p >= e.tls_lo && p < e.tls_hi) return check_shared(e, t, p, n, kind);
  if (p >= e.host_lo && p < e.host_hi) return;
  const Allocation* a = e.last_alloc;
  if (!(a && p >= a->begin && p + n <= a->begin + a->bytes)) a = device().find(p, n);
  if (a) {
    e.last_alloc = a;
    if (kind == Access::Write) check_global_write(e, t, p);
    return;
  }
  report_invalid_global(e, t, p, n, kind);  // its strings are gone before the abort leaves this stack
  abort_kernel(e, t, cudaErrorIllegalAddress);
}

// The site "path/file.cu:line" names the barrier "file.cu:line".
const char* site_name(const char* site) {
  const char* slash = std::strrchr(site, '/');
  return slash == nullptr ? site : slash + 1;
}

}  // namespace

// ---- launch --------------------------------------------------------------------------------------

void launch(const KernelRun& run) {
  Device& d = device();
  std::lock_guard<std::mutex> lock(d.mu);
  if (d.sticky != cudaSuccess) return set_last_error(d.sticky);
  const dim3 b = run.block, g = run.grid;
  const unsigned long long threads = 1ull * b.x * b.y * b.z;
  if (b.x == 0 || b.y == 0 || b.z == 0 || g.x == 0 || g.y == 0 || g.z == 0 || b.x > 1024 || b.y > 1024 ||
      b.z > 64 || threads > static_cast<unsigned long long>(kMaxThreadsPerBlock) || g.x > kMaxGridX ||
      g.y > kMaxGridYZ || g.z > kMaxGridYZ)
    return set_last_error(cudaErrorInvalidConfiguration);
  const auto bound = d.launch_bounds.find(run.kernel);
  if (bound != d.launch_bounds.end() && threads > static_cast<unsigned long long>(bound->second))
    return set_last_error(cudaErrorLaunchOutOfResources);
  auto opt = d.max_dynamic_shared.find(run.kernel);
  const std::size_t dyn_limit = opt == d.max_dynamic_shared.end() ? kStaticSharedLimit : static_cast<std::size_t>(opt->second);
  if (run.shared_bytes > dyn_limit) return set_last_error(cudaErrorInvalidValue);

  Exec& e = host_exec();
  if (e.current != nullptr) outside_kernel("a kernel launch from device code");
  e.run = &run;
  e.nthreads = static_cast<int>(threads);
  e.aborted = false;
  e.reports = e.reports_dropped = 0;
  ++e.launch_gen;
  e.static_touched = 0;
  e.static_reported = false;
  e.last_alloc = nullptr;
  e.global_writes.clear();
  e.barriers_run.clear();
  e.removed_barrier = d.removed_barrier.empty() ? nullptr : d.removed_barrier.c_str();
  // Blocks in linear order, or the reverse (set_block_order): a result that changes with the order
  // depends on scheduling, which a device does not fix.
  const unsigned long long blocks = 1ull * g.x * g.y * g.z;
  const bool reverse = d.reverse_blocks;
  for (unsigned long long i = 0; i < blocks && !e.aborted; ++i) {
    const unsigned long long lin = reverse ? blocks - 1 - i : i;
    const unsigned x = static_cast<unsigned>(lin % g.x), y = static_cast<unsigned>(lin / g.x % g.y),
                   z = static_cast<unsigned>(lin / g.x / g.y);
    e.block = {x, y, z};
    e.block_linear = static_cast<unsigned>(lin);
    run_block(e);
  }
  if (e.reports_dropped > 0)
    add_finding(std::string("(") + std::to_string(e.reports_dropped) + " more reports of kernel " + run.name +
                " in this launch left out)");
  d.executed.insert(run.name);  // it ran, to its end or to a fault
  for (const char* site : e.barriers_run) {
    d.barriers_executed.insert(site_name(site));
    d.barrier_hits.insert(site_name(site));
  }
  if (e.aborted) {
    d.sticky = e.abort_error;
    set_last_error(e.abort_error);
  }
  e.run = nullptr;
}

// ---- device-side functions -----------------------------------------------------------------------

uint3 thread_index() { return exec("threadIdx").current->idx; }
uint3 block_index() { return exec("blockIdx").block; }
dim3 block_dim() { return exec("blockDim").run->block; }
dim3 grid_dim() { return exec("gridDim").run->grid; }
int lane_id() { return exec("a lane id").current->lane; }

unsigned active_mask() {
  Exec& e = exec("__activemask");
  return e.warps[e.current->warp].live;
}

void syncthreads(const char* site) {
  Exec& e = exec("__syncthreads");
  e.barriers_run.insert(site);
  if (e.removed_barrier != nullptr && std::strcmp(site_name(site), e.removed_barrier) == 0) return;
  syncthreads_count(0, -1, site);
}

int syncthreads_count(int predicate, int op, const char* site) {
  Exec& e = exec("__syncthreads");
  Thread& t = *e.current;
  if (e.at_barrier == 0) {
    e.barrier_site = site;
    e.barrier_op = 0;
  } else if (std::strcmp(site, e.barrier_site) != 0) {
    report(e, "synccheck", &t,
           std::string("barrier divergence: this thread waits at __syncthreads at ") + site +
               " while others wait at " + e.barrier_site);
  }
  t.predicate = predicate != 0;
  e.barrier_op += t.predicate;
  ++e.at_barrier;
  t.state = State::Barrier;
  if (e.at_barrier == e.live) {  // the last to arrive opens the barrier and goes on running
    const uint64_t count = static_cast<uint64_t>(e.barrier_op);
    t.state = State::Ready;
    t.result = count;
    for (Thread& u : e.threads)
      if (u.state == State::Barrier) u.result = count;
    open_barrier(e);
  } else {
    wait(e, t);
  }
  const int count = static_cast<int>(t.result);
  switch (op) {
    case 0: return count;
    case 1: return count == e.nthreads ? 1 : 0;
    case 2: return count > 0 ? 1 : 0;
    default: return 0;
  }
}

void syncwarp(unsigned mask) {
  Exec& e = exec("__syncwarp");
  collective(e, *e.current, Op::SyncWarp, mask);
}

uint64_t shuffle(Shuffle kind, unsigned mask, uint64_t value, int arg, int width) {
  Exec& e = exec("a warp shuffle");
  Thread& t = *e.current;
  if (width <= 0 || width > 32 || (width & (width - 1)) != 0) {
    report(e, "synccheck", &t, "shuffle width " + std::to_string(width) + " is not a power of two up to 32");
    width = 32;
  }
  t.kind = static_cast<int>(kind);
  t.value = value;
  t.arg = arg;
  t.width = width;
  collective(e, t, Op::Shuffle, mask);
  return t.result;
}

unsigned vote(Vote kind, unsigned mask, int predicate) {
  Exec& e = exec("a warp vote");
  Thread& t = *e.current;
  t.kind = static_cast<int>(kind);
  t.predicate = predicate != 0;
  collective(e, t, Op::Vote, mask);
  return static_cast<unsigned>(t.result);
}

void wmma_mma(const unsigned short* a, const unsigned short* b, const float* c, float* d) {
  Exec& e = exec("wmma::mma_sync");
  Thread& t = *e.current;
  if (e.warps[t.warp].live != 0xffffffffu) {
    report(e, "synccheck", &t, "wmma::mma_sync needs all 32 lanes of the warp; live lanes " + hex(e.warps[t.warp].live));
    abort_kernel(e, t, cudaErrorLaunchFailure);
  }
  t.mma_a = a;
  t.mma_b = b;
  t.mma_c = c;
  t.mma_d = d;
  collective(e, t, Op::Mma, 0xffffffffu);
}

void wmma_check_pointer(const void* p, unsigned ldm, unsigned element_bytes, const char* what) {
  Exec& e = exec(what);
  const unsigned step = 16 / element_bytes;  // ldm: a multiple of 16 bytes
  if (reinterpret_cast<uintptr_t>(p) % 32 != 0 || ldm % step != 0) {
    report(e, "memcheck", e.current,
           std::string("wmma::") + what + " at " + hex(reinterpret_cast<uintptr_t>(p)) + " with ldm " +
               std::to_string(ldm) + ": the pointer must be 32-byte aligned and ldm a multiple of " +
               std::to_string(step));
    abort_kernel(e, *e.current, cudaErrorMisalignedAddress);
  }
}

void atomic_read(const void* p, void* out, std::size_t bytes) {
  check_access(const_cast<void*>(p), bytes, Access::Atomic);
  std::memcpy(out, p, bytes);
}

void atomic_write(void* p, const void* in, std::size_t bytes) { std::memcpy(p, in, bytes); }  // checked by the read

}  // namespace cuda_sim

// ---- the instrumentation's entry points -----------------------------------------------------------
// GCC's -fsanitize=thread calls these for every load and store of the kernel files (compiled
// with --param tsan-instrument-func-entry-exit=0, so no function hooks). No ThreadSanitizer
// runtime is linked: these are the whole of it.
using cuda_sim::check_access;
using Access = cuda_sim::Access;

extern "C" {
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit(void*) {}
#define RV_SIM_HOOKS(n)                                                                           \
  void __tsan_read##n(void* p) { check_access(p, n, Access::Read); }                             \
  void __tsan_write##n(void* p) { check_access(p, n, Access::Write); }                           \
  void __tsan_unaligned_read##n(void* p) { check_access(p, n, Access::Read); }                   \
  void __tsan_unaligned_write##n(void* p) { check_access(p, n, Access::Write); }                 \
  void __tsan_volatile_read##n(void* p) { check_access(p, n, Access::Read); }                    \
  void __tsan_volatile_write##n(void* p) { check_access(p, n, Access::Write); }                  \
  void __tsan_unaligned_volatile_read##n(void* p) { check_access(p, n, Access::Read); }          \
  void __tsan_unaligned_volatile_write##n(void* p) { check_access(p, n, Access::Write); }
RV_SIM_HOOKS(1)
RV_SIM_HOOKS(2)
RV_SIM_HOOKS(4)
RV_SIM_HOOKS(8)
RV_SIM_HOOKS(16)
#undef RV_SIM_HOOKS
void __tsan_read_range(void* p, long n) { check_access(p, static_cast<std::size_t>(n), Access::Read); }
void __tsan_write_range(void* p, long n) { check_access(p, static_cast<std::size_t>(n), Access::Write); }
void __tsan_vptr_update(void*, void*) {}
void __tsan_vptr_read(void*) {}
}

// Atomics of host code in the kernel files (function-local statics, std::atomic), which the
// instrumentation routes here too: done for real, on any host thread.
extern "C" {
#define RV_SIM_ATOMICS(bits, type)                                                                   \
  type __tsan_atomic##bits##_load(const volatile void* a, int) {                                     \
    return __atomic_load_n(static_cast<const volatile type*>(a), __ATOMIC_SEQ_CST);                  \
  }                                                                                                  \
  void __tsan_atomic##bits##_store(volatile void* a, type v, int) {                                  \
    __atomic_store_n(static_cast<volatile type*>(a), v, __ATOMIC_SEQ_CST);                           \
  }                                                                                                  \
  type __tsan_atomic##bits##_exchange(volatile void* a, type v, int) {                               \
    return __atomic_exchange_n(static_cast<volatile type*>(a), v, __ATOMIC_SEQ_CST);                 \
  }                                                                                                  \
  type __tsan_atomic##bits##_fetch_add(volatile void* a, type v, int) {                              \
    return __atomic_fetch_add(static_cast<volatile type*>(a), v, __ATOMIC_SEQ_CST);                  \
  }                                                                                                  \
  type __tsan_atomic##bits##_fetch_sub(volatile void* a, type v, int) {                              \
    return __atomic_fetch_sub(static_cast<volatile type*>(a), v, __ATOMIC_SEQ_CST);                  \
  }                                                                                                  \
  bool __tsan_atomic##bits##_compare_exchange_strong(volatile void* a, void* c, type v, int, int) {  \
    return __atomic_compare_exchange_n(static_cast<volatile type*>(a), static_cast<type*>(c), v, false, \
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                          \
  }                                                                                                  \
  bool __tsan_atomic##bits##_compare_exchange_weak(volatile void* a, void* c, type v, int, int) {    \
    return __atomic_compare_exchange_n(static_cast<volatile type*>(a), static_cast<type*>(c), v, false, \
                                       __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);                          \
  }
RV_SIM_ATOMICS(8, unsigned char)
RV_SIM_ATOMICS(16, unsigned short)
RV_SIM_ATOMICS(32, unsigned int)
RV_SIM_ATOMICS(64, unsigned long)
#undef RV_SIM_ATOMICS
void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }
}
