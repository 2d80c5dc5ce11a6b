// Pinned host staging for the CUDA backend's uploads, downloads and non-blocking polls (see
// host_staging.cuh). Everything is queued on the default stream, as every launch of the backend is,
// so a copy is ordered after the kernels queued before it.
#include <algorithm>
#include <cstring>

#include "cuda/host_staging.cuh"
#include "cuda/ops.cuh"

namespace revenant::cuda {

HostStaging::~HostStaging() {
  if (buf_ || slot_) cudaDeviceSynchronize();  // nothing in flight may still touch the buffers
  if (buf_) cudaFreeHost(buf_);
  if (slot_) cudaFreeHost(slot_);
  if (uploaded_) cudaEventDestroy(uploaded_);
  if (polled_) cudaEventDestroy(polled_);
}

// The host waits here only when the last upload has not yet left the pinned buffer.
void HostStaging::wait_for_upload(const char* op) {
  if (!upload_pending_) return;
  const cudaError_t q = cudaEventQuery(uploaded_);
  if (q == cudaErrorNotReady) RV_CUDA_CHECK(cudaEventSynchronize(uploaded_), op);
  else RV_CUDA_CHECK(q, op);
  upload_pending_ = false;
}

void HostStaging::reserve(std::size_t bytes, const char* op) {
  if (bytes <= bytes_) return;
  const std::size_t grown = std::min(kStageMax, std::max(bytes, 2 * bytes_));
  if (buf_) RV_CUDA_CHECK(cudaFreeHost(buf_), op);
  buf_ = nullptr;
  bytes_ = 0;
  RV_CUDA_CHECK(cudaMallocHost(&buf_, grown), op);
  bytes_ = grown;
  if (!uploaded_) RV_CUDA_CHECK(cudaEventCreateWithFlags(&uploaded_, cudaEventDisableTiming), op);
}

void HostStaging::upload(void* dst, const void* src, std::size_t bytes) {
  if (bytes > kStageMax) {
    std::lock_guard<std::mutex> lock(mu_);
    poll_src_ = nullptr;
    RV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "upload");
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  poll_src_ = nullptr;  // a read in flight from before this upload is not the caller's to see
  wait_for_upload("upload");
  reserve(bytes, "upload");
  std::memcpy(buf_, src, bytes);
  RV_CUDA_CHECK(cudaMemcpyAsync(dst, buf_, bytes, cudaMemcpyHostToDevice, nullptr), "upload");
  RV_CUDA_CHECK(cudaEventRecord(uploaded_, nullptr), "upload");
  upload_pending_ = true;
}

void HostStaging::download(void* dst, const void* src, std::size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  poll_src_ = nullptr;  // complete after the wait below, but older than what the caller now reads
  if (bytes > kStageMax) {
    RV_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "download");
    return;
  }
  wait_for_upload("download");
  reserve(bytes, "download");
  RV_CUDA_CHECK(cudaMemcpyAsync(buf_, src, bytes, cudaMemcpyDeviceToHost, nullptr), "download");
  RV_CUDA_CHECK(cudaStreamSynchronize(nullptr), "download");
  std::memcpy(dst, buf_, bytes);
}

bool HostStaging::poll(const int* src, int* value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!slot_) {
    RV_CUDA_CHECK(cudaMallocHost(&slot_, sizeof(int)), "poll");
    RV_CUDA_CHECK(cudaEventCreateWithFlags(&polled_, cudaEventDisableTiming), "poll");
  }
  bool got = false;
  if (poll_src_) {
    const cudaError_t q = cudaEventQuery(polled_);
    if (q == cudaErrorNotReady) return false;
    RV_CUDA_CHECK(q, "poll");
    if (poll_src_ == src) {
      *value = *slot_;
      got = true;
    }
    poll_src_ = nullptr;
  }
  RV_CUDA_CHECK(cudaMemcpyAsync(slot_, src, sizeof(int), cudaMemcpyDeviceToHost, nullptr), "poll");
  RV_CUDA_CHECK(cudaEventRecord(polled_, nullptr), "poll");
  poll_src_ = src;
  return got;
}

}  // namespace revenant::cuda
