// The barrier sweep (emulated builds): every __syncthreads() of native/src/cuda is removed in turn,
// and the suite must fail without it. For each barrier the sweep finds in the sources, it picks the
// quickest unit of the sections before that executed it (harness.h's unit_runs) and runs that unit
// again in a child process with the barrier removed (cuda_sim::remove_barrier):
//   revenant_native_test cuda --unit NAME --remove-barrier FILE.cu:LINE
// The removal is caught when the child fails: a racecheck/initcheck/memcheck report, a result off
// the CPU's, an exception, or a crash. A barrier no unit executed, or one whose removal goes
// unnoticed, fails the sweep by name: it either guards nothing (delete it) or its test is missing.
// Two children run at a time, one per hardware thread here.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "harness.h"

extern char** environ;

namespace rvtest {

#ifdef REVENANT_CUDA_SIM
namespace {

struct Site {
  std::string name;  // "file.cu:line"
  const UnitRun* unit = nullptr;
  pid_t pid = -1;
  std::string log;
  int status = 0;
};

// "file.cu:line" of every line of native/src/cuda that calls __syncthreads() (not its _count/_and/
// _or forms, which are reductions a kernel cannot simply do without), outside // comments.
std::vector<std::string> barrier_sites() {
  namespace fs = std::filesystem;
  std::vector<std::string> out;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(std::string(REVENANT_SOURCE_DIR) + "/native/src/cuda"))
    if (entry.path().extension() == ".cu" || entry.path().extension() == ".cuh") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::ifstream in(file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      const std::size_t at = line.find("__syncthreads()"), comment = line.find("//");
      if (at != std::string::npos && (comment == std::string::npos || comment > at))
        out.push_back(file.filename().string() + ":" + std::to_string(n));
    }
  }
  return out;
}

// The quickest unit that executed `site`, or null.
const UnitRun* quickest_unit(const std::string& site) {
  const UnitRun* best = nullptr;
  for (const UnitRun& u : unit_runs())
    if (std::find(u.barriers.begin(), u.barriers.end(), site) != u.barriers.end() && (!best || u.seconds < best->seconds))
      best = &u;
  return best;
}

void start(Site& s) {
  std::string file = s.name;
  std::replace(file.begin(), file.end(), ':', '_');
  s.log = (std::filesystem::temp_directory_path() / ("revenant_barrier_sweep_" + std::to_string(getpid()) + "_" + file + ".log")).string();
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  posix_spawn_file_actions_addopen(&io, 1, s.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&io, 1, 2);
  const char* argv[] = {"revenant_native_test", "cuda", "--unit", s.unit->name.c_str(), "--remove-barrier", s.name.c_str(), nullptr};
  if (posix_spawn(&s.pid, "/proc/self/exe", &io, nullptr, const_cast<char**>(argv), environ) != 0) s.pid = -1;
  posix_spawn_file_actions_destroy(&io);
}

// The child's first line that says what went wrong: a checker report, a failed check, a sanitizer.
std::string first_failure(const std::string& log) {
  std::ifstream in(log);
  std::string line;
  for (const char* word : {"racecheck", "initcheck", "memcheck", "synccheck", "FAIL", "ERROR", "runtime error"}) {
    in.clear();
    in.seekg(0);
    while (std::getline(in, line))
      if (line.find(word) != std::string::npos) return line.size() > 240 ? line.substr(0, 240) + "..." : line;
  }
  return "";
}

void finish(Site& s) {
  const bool exited = WIFEXITED(s.status);
  const int code = exited ? WEXITSTATUS(s.status) : -1;
  std::string how;
  if (s.pid < 0) how = "the child could not start";
  else if (exited && code == 0) how = "not caught: unit " + s.unit->name + " passes without it";
  else if (exited && code == 4) how = "unit " + s.unit->name + " did not run in the child";
  else if (exited && code == 3) how = "caught by " + s.unit->name + ": " + first_failure(s.log);
  else how = "caught by " + s.unit->name + " (the child " + (exited ? "exited " + std::to_string(code) : "died of signal " + std::to_string(WTERMSIG(s.status))) + "): " + first_failure(s.log);
  const bool caught = s.pid >= 0 && !(exited && (code == 0 || code == 4));
  check(caught, "barrier sweep: removing the __syncthreads() at " + s.name + " fails the suite", how);
  std::remove(s.log.c_str());
}

}  // namespace
#endif

void run_barrier_sweep() {
  std::printf("== barrier sweep: each __syncthreads() of native/src/cuda removed in turn\n");
#ifdef REVENANT_CUDA_SIM
  Timer timer;
  std::vector<Site> sites;
  for (const std::string& name : barrier_sites()) sites.push_back(Site{name, quickest_unit(name)});
  check(sites.size() >= 20, "barrier sweep: the barriers of native/src/cuda found", std::to_string(sites.size()) + " sites");
  std::vector<Site*> todo;
  for (Site& s : sites) {
    if (s.unit == nullptr) check(false, "barrier sweep: the __syncthreads() at " + s.name + " ran in some unit", "no unit executed it");
    else todo.push_back(&s);
  }
  const std::size_t width = std::max(1L, std::min(2L, sysconf(_SC_NPROCESSORS_ONLN)));
  std::map<pid_t, Site*> running;
  std::size_t next = 0;
  while (next < todo.size() || !running.empty()) {
    while (next < todo.size() && running.size() < width) {
      Site& s = *todo[next++];
      start(s);
      if (s.pid < 0) finish(s);
      else running[s.pid] = &s;
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    const auto it = running.find(pid);
    if (pid < 0) break;
    if (it == running.end()) continue;
    it->second->status = status;
    finish(*it->second);
    running.erase(it);
  }
  std::printf("barrier sweep: %zu barriers, one child each, %.1f s\n", todo.size(), timer.seconds());
#else
  std::printf("skipped: not an emulated build (cmake -DREVENANT_CUDA_SIM=ON)\n");
#endif
}

}  // namespace rvtest
