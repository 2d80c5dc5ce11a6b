// How many bytes a model may still allocate, so that a batch too big for the machine is refused
// with its numbers instead of ending in an out-of-memory kill.
#pragma once
#include <cstddef>
#include <string>

namespace revenant {

class Backend;

struct MemoryBudget {
  std::size_t bytes;   // SIZE_MAX: unknown, nothing is refused
  std::string source;  // where the figure comes from, quoted in errors
};

// REVENANT_MEMORY_LIMIT (bytes) when set, else what the backend reports free.
MemoryBudget memory_budget(Backend& backend);

// Host memory still free for this process: the smaller of the kernel's MemAvailable and the
// headroom under the cgroup's memory limit (what a container's out-of-memory killer enforces).
MemoryBudget host_memory_available();

// Parses a byte count ("123456"); false for anything else. For REVENANT_MEMORY_LIMIT.
bool parse_bytes(const char* text, std::size_t* out);

}  // namespace revenant
