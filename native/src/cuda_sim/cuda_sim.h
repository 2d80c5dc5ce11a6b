// The CUDA emulator's own controls, for tests (native/test/cuda_sim_tests.cc) and the emulator's
// files; plain C++ without CUDA types. Present only in builds with REVENANT_CUDA_SIM.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace cuda_sim {

// Reports of the checkers since the last call (racecheck, memcheck, synccheck, initcheck), each
// naming the check, kernel, block, thread and address; emptied by the call.
std::vector<std::string> take_findings();

// Names of the kernels launched at least once in this process (run to their end or to a fault).
std::vector<std::string> executed_kernels();

// The plain __syncthreads() sites executed, as "file.cu:line" (the file's name without its folder):
// executed_barriers() since the process started, take_barrier_hits() since its last call (emptied
// by the call), so a test can tell which barriers one piece of work runs.
std::vector<std::string> executed_barriers();
std::vector<std::string> take_barrier_hits();

// Runs as if the plain __syncthreads() at `site` ("file.cu:line", as above) were deleted from the
// source: each thread that reaches it goes straight on. Empty restores every barrier. Also read
// from REVENANT_CUDA_SIM_REMOVE_BARRIER at start. For the barrier sweep (native/test/barrier_sweep.cc):
// with any one barrier that guards shared memory gone, the suite must fail.
void remove_barrier(const std::string& site);

// Calls `hook` (null: none) right after each report is recorded and printed, for a process that
// stops at its first report (the barrier sweep's children).
void on_finding(void (*hook)());

// Clears a sticky error (a kernel that faulted), as restarting the process would on a device;
// allocations stay. For the tests that make kernels fault on purpose.
void reset_device();

// The compute capability the emulated part reports (default 9.0), e.g. 7.0 to play a card the
// build has no code for. Also read from REVENANT_CUDA_SIM_CC ("70") at start.
void set_compute_capability(int major, int minor);

// How many kernels have a __launch_bounds__ registered (cuda_runtime.h, register_launch_bounds).
std::size_t registered_launch_bounds();

// Runs the blocks of every later launch last to first (true) or first to last (false, the
// default). A kernel whose result depends on the order its blocks run in gives different bits
// under the two orders; the determinism tests run each reduction both ways.
void set_block_order(bool reverse);

// Whether the part reports memory pools (cudaDevAttrMemoryPoolsSupported; default yes), to play a
// device without them. The pool calls themselves keep working.
void set_memory_pools(bool supported);

// Counts, since the process started, of the calls that make the host wait for the device on a GPU:
// cudaDeviceSynchronize, cudaStreamSynchronize, cudaEventSynchronize, cudaFree (it synchronises
// the device), every cudaMemcpy to or from the host, and a cudaMemcpyAsync to or from pageable
// (not cudaMallocHost'd) host memory, which CUDA performs synchronously. device_to_host counts the
// copies from device to host memory, synchronous or not. The emulator completes every call before
// it returns, so these count what a GPU would make the host wait for.
struct HostSyncs {
  long waits = 0, device_to_host = 0;
};
HostSyncs host_syncs();

}  // namespace cuda_sim
