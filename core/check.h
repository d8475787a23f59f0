// core/check.h — the three kinds of failure: user mistakes throw st::Error naming what was
// wrong; internal invariants are ST_ASSERT (always on: a broken invariant must never train on silently);
// library calls are checked with file:line.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace st {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A value the user wrote, as echoed in a message: whole when short, else its first `keep`
// characters and "... (N bytes)", so that a 50 MB string does not come back whole.
std::string excerpt(const std::string& text, size_t keep = 80);

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void assert_fail(const char* expr, const char* file, int line, const std::string& msg);
}  // namespace detail

}  // namespace st

// Throws st::Error with the streamed message when `cond` is false (user-facing errors).
#define ST_CHECK(cond, ...) \
  do { if (!(cond)) throw ::st::Error(::st::detail::concat(__VA_ARGS__)); } while (0)
// Internal invariant: a bug in sparsetrain, not a user mistake.
#define ST_ASSERT(cond, ...) \
  do { if (!(cond)) ::st::detail::assert_fail(#cond, __FILE__, __LINE__, ::st::detail::concat("", ##__VA_ARGS__)); } while (0)
