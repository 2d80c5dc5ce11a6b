// Pinned host memory for the CUDA backend's copies between host and device (host_staging.cu).
// Copies through pageable memory are synchronous and staged by the driver; through a pinned buffer
// kept for the backend's life they are DMA transfers, an upload returns without waiting for the
// device, and a download waits once. One buffer per backend, grown on demand up to kStageMax; a
// larger copy goes direct (its own bandwidth dwarfs the staging it would need).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <mutex>

#include "cuda/ops.cuh"

namespace revenant::cuda {

class HostStaging {
 public:
  static constexpr std::size_t kStageMax = kHostStagingMax;

  HostStaging() = default;
  ~HostStaging();  // never throws
  HostStaging(const HostStaging&) = delete;
  HostStaging& operator=(const HostStaging&) = delete;

  // Copies host memory to the device: into the pinned buffer, then an asynchronous copy queued on
  // the default stream. The host waits only when the buffer's previous upload is still in flight.
  void upload(void* dst, const void* src, std::size_t bytes);
  // Copies device memory to the host after the work queued before it: one wait.
  void download(void* dst, const void* src, std::size_t bytes);
  // A non-blocking read of one int of device memory: when a read of `src` requested by an earlier
  // call has arrived, sets *value and returns true; then (if none is in flight) requests a fresh
  // one. Returns false while the previous read is still in flight, or on the first call. An
  // upload or a download drops a read in flight, so a poll never answers with a value read before
  // the caller's last copy (a loop that begins with an upload sees nothing of an earlier loop).
  bool poll(const int* src, int* value);

 private:
  void wait_for_upload(const char* op);
  void reserve(std::size_t bytes, const char* op);

  std::mutex mu_;
  void* buf_ = nullptr;                 // pinned, bytes_ long
  std::size_t bytes_ = 0;
  cudaEvent_t uploaded_ = nullptr;      // recorded after the last upload from buf_
  bool upload_pending_ = false;
  int* slot_ = nullptr;                 // pinned int the poll reads into
  cudaEvent_t polled_ = nullptr;        // recorded after the poll's copy
  const int* poll_src_ = nullptr;       // what the read in flight reads; null: none in flight
};

}  // namespace revenant::cuda
