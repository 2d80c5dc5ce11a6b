#include "core/memory.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "core/backend.h"
#include "core/error.h"

namespace revenant {
namespace {

// The first number in a file ("max" and missing files give false).
bool read_number(const char* path, std::size_t* out) {
  std::ifstream f(path);
  std::string word;
  if (!(f >> word)) return false;
  return parse_bytes(word.c_str(), out);
}

bool meminfo_available(std::size_t* out) {
  std::ifstream f("/proc/meminfo");
  std::string key, unit;
  std::size_t kb = 0;
  while (f >> key >> kb >> unit) {
    if (key == "MemAvailable:") {
      *out = kb * 1024;
      return true;
    }
  }
  return false;
}

// Limit minus usage of this process's cgroup (v2, then v1); false when there is no limit.
bool cgroup_headroom(std::size_t* out) {
  std::size_t limit = 0, used = 0;
  if ((read_number("/sys/fs/cgroup/memory.max", &limit) && read_number("/sys/fs/cgroup/memory.current", &used)) ||
      (read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes", &limit) &&
       read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes", &used))) {
    if (limit >= (std::size_t{1} << 60)) return false;  // v1 writes "no limit" as a huge number
    *out = limit > used ? limit - used : 0;
    return true;
  }
  return false;
}

}  // namespace

bool parse_bytes(const char* text, std::size_t* out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = static_cast<std::size_t>(v);
  return true;
}

MemoryBudget host_memory_available() {
  std::size_t avail = 0, headroom = 0;
  const bool have_avail = meminfo_available(&avail);
  const bool have_cgroup = cgroup_headroom(&headroom);
  if (have_avail && have_cgroup)
    return headroom < avail ? MemoryBudget{headroom, "headroom under the cgroup memory limit"}
                            : MemoryBudget{avail, "MemAvailable in /proc/meminfo"};
  if (have_cgroup) return {headroom, "headroom under the cgroup memory limit"};
  if (have_avail) return {avail, "MemAvailable in /proc/meminfo"};
  const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    return {static_cast<std::size_t>(pages) * static_cast<std::size_t>(page), "free physical pages (sysconf)"};
  return {SIZE_MAX, "unknown"};
}

MemoryBudget memory_budget(Backend& backend) {
  const char* env = std::getenv("REVENANT_MEMORY_LIMIT");
  if (env != nullptr && *env != '\0') {
    std::size_t limit = 0;
    RV_CHECK(parse_bytes(env, &limit), "memory", std::string("REVENANT_MEMORY_LIMIT must be a byte count, got \"") + env + "\"");
    return {limit, "REVENANT_MEMORY_LIMIT"};
  }
  return backend.free_memory();
}

}  // namespace revenant
