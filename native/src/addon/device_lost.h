// What the addon does with a DeviceLostError (core/error.h): the CUDA context is gone for good,
// so instead of rejecting one call (and letting the actor answer pings and fail every later call)
// the process prints the error and exits with kDeviceLostExitCode; its supervisor restarts the
// actor, whose new process gets a fresh context and restores its state.
#pragma once
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace revenant::addon {

// Ends the process at once from any thread. std::_Exit skips atexit handlers and static
// destructors: they would call into the broken CUDA context (and could hang there), and other
// threads are still running.
[[noreturn]] inline void exit_device_lost(const DeviceLostError& e) {
  std::fprintf(stderr, "revenant: fatal device error, exiting (status %d) so that the actor is restarted: %s\n",
               kDeviceLostExitCode, e.what());
  std::fflush(stderr);
  std::_Exit(kDeviceLostExitCode);
}

// Runs `work`, ending the process on a DeviceLostError; every other exception passes through.
template <typename Work>
auto exiting_on_device_lost(Work&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const DeviceLostError& e) {
    exit_device_lost(e);
  }
}

}  // namespace revenant::addon
