// experiment/atomic_file.h — files that are either the old version or the new one, never half-written.
//   AtomicWriter:      write to "<path>.tmp.<pid>", commit() = fflush + fsync + rename over <path>
//   write_file_atomic: the one-call form for text (run-folder config and summary JSON)
// Used by checkpoints (experiment/safetensors.cpp). A writer killed before commit leaves its temp file;
// in a run folder the next start removes it (experiment/run_folder.h).
// Tests: tests/experiment/test_safetensors.cpp
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

namespace st::experiment {

// Creates the temp file on construction. If commit() is never reached (an exception, an early
// return), the destructor removes the temp file and <path> is left as it was.
// Errors (cannot create, short write, fsync, rename) throw std::runtime_error naming the file.
class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path);
  ~AtomicWriter();
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;

  void write(const void* data, std::size_t size);
  void write(const std::string& s) { write(s.data(), s.size()); }
  // Flushes, fsyncs, closes and renames the temp file over the target. Call once.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, const std::string& contents);

}  // namespace st::experiment
