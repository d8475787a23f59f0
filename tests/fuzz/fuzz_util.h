// tests/fuzz/fuzz_util.h — what the fuzz targets share: the readers take paths, so an input goes
// through an in-memory file (memfd), and the rule for what a reader may do with bad input.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

namespace st::fuzz {

// One in-memory file per process, rewritten for every input; its /proc path opens it afresh (from
// offset 0), as a reader opens a user's file. No disk I/O, nothing left behind.
class MemFile {
 public:
  MemFile() : fd_(memfd_create("st-fuzz", 0)) {
    if (fd_ < 0) std::abort();
  }
  std::string write(const uint8_t* data, size_t size) {
    if (ftruncate(fd_, 0) != 0) std::abort();
    for (size_t done = 0; done < size;) {
      ssize_t n = pwrite(fd_, data + done, size - done, static_cast<off_t>(done));
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    return "/proc/self/fd/" + std::to_string(fd_);
  }

 private:
  int fd_;
};

inline MemFile& mem_file() {
  static MemFile f;
  return f;
}

// A reader given bad input must refuse it with a message: std::runtime_error (st::Error and
// ConfigError derive from it) with some text. Any other exception (std::out_of_range from stoi,
// a raw nlohmann::json error, bad_alloc from a size taken on trust) reaches the user as an
// unexplained message or worse, so the target stops there like on a crash, naming what escaped.
template <class Fn>
void expect_clean_refusal(Fn&& fn) {
  try {
    fn();
  } catch (const std::runtime_error& e) {
    if (e.what()[0] == '\0') {
      std::fprintf(stderr, "refused with an empty message\n");
      std::abort();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "escaped exception (not a runtime_error): %s\n", e.what());
    std::abort();
  }
}

}  // namespace st::fuzz
