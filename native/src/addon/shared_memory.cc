// mapShared: bulk data between processes on one host without the socket. A file (callers pass one
// under /dev/shm, so it lives in memory) is mapped MAP_SHARED and returned as an external
// ArrayBuffer: every process that maps the same file sees the same bytes, so a tensor crosses with
// one copy in and one copy out instead of being framed, written, read and decoded.
//
// The mapping lives as long as the ArrayBuffer (its finalizer unmaps it); the file lives until
// someone unlinks it, so the caller owns the name and removes it when done.
//
// Creating reserves the file's pages up front (posix_fallocate): on tmpfs a file only truncated to
// size is sparse, and a full /dev/shm would then surface as SIGBUS on the first write to an
// unreserved page, killing the process; reserved, it is an ENOSPC error here. Mappings are made
// with MAP_POPULATE so the page tables are built at map time rather than one fault per 4 KiB page
// during the first transfer (16 MiB on a 2-core machine: first write 9.5 ms without it, 2.0 ms
// with it, about what later writes take; the map itself costs what the faults would have).
#include "addon/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

namespace revenant::addon {
namespace {

// 1 TiB: far past any tensor we move, and well inside what off_t and size_t hold.
constexpr double kMaxBytes = 1099511627776.0;

struct MapRequest {
  std::string path;
  std::size_t bytes = 0;
  bool create = false;
};

// A number as JavaScript would print it (no trailing zeros), for error messages.
std::string show_number(double d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

std::string quoted(const std::string& path) { return "\"" + path + "\""; }

// "ENOENT (No such file or directory)": the code a user can search for and what it means.
std::string errno_text(int err) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  const char* name = strerrorname_np(err);
  const std::string code = name ? name : "errno " + std::to_string(err);
#else
  const std::string code = "errno " + std::to_string(err);
#endif
  return code + " (" + std::strerror(err) + ")";
}

// An Error carrying `code` ("ENOENT", ...) as Node's system errors do, so callers can branch on it;
// `hint` says what to do about it.
[[noreturn]] void throw_system(Napi::Env env, const std::string& message, int err, const std::string& hint = "") {
  Napi::Error e = Napi::Error::New(env, "mapShared: " + message + ": " + errno_text(err) + hint);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
  if (const char* name = strerrorname_np(err)) e.Set("code", name);
#endif
  throw e;
}

MapRequest read_request(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "mapShared(path: string, bytes: number, create: boolean)";
  if (info.Length() < 3) throw Napi::TypeError::New(env, std::string(usage) + ": expected 3 arguments");
  if (!info[0].IsString()) throw Napi::TypeError::New(env, std::string(usage) + ": path must be a string");
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, std::string(usage) + ": bytes must be a number");
  if (!info[2].IsBoolean()) throw Napi::TypeError::New(env, std::string(usage) + ": create must be a boolean");
  MapRequest r;
  r.path = info[0].As<Napi::String>().Utf8Value();
  if (r.path.empty()) throw Napi::TypeError::New(env, "mapShared: path is empty; expected a file path such as /dev/shm/<name>");
  // open() would stop at the first NUL and map a different file than the one named.
  if (r.path.find('\0') != std::string::npos)
    throw Napi::TypeError::New(env, "mapShared: path " + quoted(r.path) + " contains a NUL character");
  const double bytes = info[1].As<Napi::Number>().DoubleValue();
  if (!(bytes >= 1 && bytes <= kMaxBytes && bytes == std::floor(bytes)))
    throw Napi::RangeError::New(env, "mapShared: bytes must be an integer in 1..1099511627776 (2^40), got " + show_number(bytes));
  r.bytes = static_cast<std::size_t>(bytes);
  r.create = info[2].As<Napi::Boolean>().Value();
  return r;
}

// Closes the descriptor on every path out; the mapping keeps the file's pages on its own.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

std::string free_space_note(int fd) {
  struct statvfs s {};
  if (::fstatvfs(fd, &s) != 0) return "";
  const double free_bytes = static_cast<double>(s.f_bavail) * static_cast<double>(s.f_frsize);
  return "; the file system has " + show_number(free_bytes) +
         " bytes free (remove unused segments, or enlarge it: /dev/shm is sized by its tmpfs mount)";
}

// Makes (or truncates) the file and reserves `bytes` of zeros in it. On failure the file is removed:
// a half-made segment would only be mapped by mistake later.
void create_file(Napi::Env env, const MapRequest& r, Fd& f) {
  f.fd = ::open(r.path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (f.fd < 0) throw_system(env, "cannot create " + quoted(r.path), errno);
  const off_t size = static_cast<off_t>(r.bytes);
  int err = ::ftruncate(f.fd, size) == 0 ? 0 : errno;
  if (err == 0) err = ::posix_fallocate(f.fd, 0, size);  // returns the error; errno is untouched
  if (err == 0) return;
  const std::string note = err == ENOSPC ? free_space_note(f.fd) : "";
  ::unlink(r.path.c_str());
  throw_system(env, "cannot reserve " + std::to_string(r.bytes) + " bytes for " + quoted(r.path), err, note);
}

// Opens an existing segment and checks it is a regular file of exactly `bytes`: a size mismatch
// means the two sides disagree about the layout, and mapping past the end would SIGBUS.
void open_file(Napi::Env env, const MapRequest& r, Fd& f) {
  f.fd = ::open(r.path.c_str(), O_RDWR | O_CLOEXEC);
  if (f.fd < 0) {
    const int err = errno;
    throw_system(env, "cannot open " + quoted(r.path), err, err == ENOENT ? "; create it first with mapShared(path, bytes, true)" : "");
  }
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) throw_system(env, "cannot stat " + quoted(r.path), errno);
  if (!S_ISREG(st.st_mode))
    throw Napi::TypeError::New(env, "mapShared: " + quoted(r.path) + " is not a regular file; expected a file made by mapShared(path, bytes, true)");
  if (static_cast<std::size_t>(st.st_size) != r.bytes)
    throw Napi::RangeError::New(env, "mapShared: " + quoted(r.path) + " holds " + std::to_string(st.st_size) +
                                         " bytes, expected " + std::to_string(r.bytes) +
                                         " (bytes must equal the size the segment was created with)");
}

// The finalizer's data: what munmap needs.
struct Mapping {
  void* addr;
  std::size_t bytes;
};

void unmap(Napi::Env, void*, Mapping* m) {
  ::munmap(m->addr, m->bytes);
  delete m;
}

}  // namespace

Napi::Value MapShared(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const MapRequest r = read_request(info);
  Fd f;
  if (r.create) create_file(env, r, f);
  else open_file(env, r, f);
  void* addr = ::mmap(nullptr, r.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, f.fd, 0);
  if (addr == MAP_FAILED) throw_system(env, "cannot map " + std::to_string(r.bytes) + " bytes of " + quoted(r.path), errno);
  auto* mapping = new Mapping{addr, r.bytes};
  try {
    return Napi::ArrayBuffer::New(env, addr, r.bytes, unmap, mapping);
  } catch (...) {
    // The runtime refused an external buffer: it owns nothing, so the mapping is still ours.
    ::munmap(addr, r.bytes);
    delete mapping;
    throw;
  }
}

}  // namespace revenant::addon
