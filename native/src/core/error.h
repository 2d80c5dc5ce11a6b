// Native errors. Every failure in the compute throws revenant::Error carrying the op, file and line,
// so the addon can turn it into a JavaScript exception instead of aborting the process.
#pragma once
#include <stdexcept>
#include <string>

namespace revenant {

class Error : public std::runtime_error {
 public:
  Error(const std::string& op, const char* file, int line, const std::string& what)
      : std::runtime_error(op + ": " + what + " (at " + source_path(file) + ":" + std::to_string(line) + ")") {}

  // The path from the repository root ("native/src/..."), whatever directory the build ran in.
  static std::string source_path(const char* file) {
    const std::string f = file;
    const std::size_t at = f.rfind("native/src/");
    return at == std::string::npos ? f : f.substr(at);
  }
};

// A failure after which the device is unusable for the rest of the process: a sticky CUDA error
// (illegal address, launch failure, uncorrectable ECC, ...) is returned by every later CUDA call,
// so retrying the call, or any other call, cannot succeed. The addon does not turn it into a
// JavaScript exception: it prints it and ends the process with kDeviceLostExitCode, and the
// supervisor restarts the actor with a fresh CUDA context. (The native test executable, having no
// supervisor, just reports it like any Error.)
class DeviceLostError : public Error {
 public:
  using Error::Error;
};

// The exit status of a process ended by a DeviceLostError (EX_IOERR; runtime/core/host/role.ts
// EXIT.DEVICE_LOST says the same).
constexpr int kDeviceLostExitCode = 74;

}  // namespace revenant

// RV_CHECK(cond, op, message): throws when cond is false. `message` is any std::string expression.
#define RV_CHECK(cond, op, message)                                      \
  do {                                                                   \
    if (!(cond)) throw ::revenant::Error((op), __FILE__, __LINE__, (message)); \
  } while (0)

#define RV_FAIL(op, message) throw ::revenant::Error((op), __FILE__, __LINE__, (message))
