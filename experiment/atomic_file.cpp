// experiment/atomic_file.cpp — temp file + fsync + rename (POSIX: rename replaces atomically).
#include "experiment/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fcntl.h>
#include <unistd.h>

namespace st::experiment {

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what, int err) {
  throw std::runtime_error(path + ": " + what + " (" + std::strerror(err) + ")");
}

// Makes the rename itself durable. Best effort: some filesystems refuse to fsync a directory.
void fsync_parent_dir(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

AtomicWriter::AtomicWriter(const std::string& path)
    : path_(path), temp_path_(path + ".tmp." + std::to_string(::getpid())) {
  file_ = std::fopen(temp_path_.c_str(), "wb");
  if (!file_) fail(path_, "cannot create temporary file \"" + temp_path_ + "\"", errno);
}

AtomicWriter::~AtomicWriter() {
  if (!committed_) discard();
}

void AtomicWriter::discard() noexcept {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::remove(temp_path_.c_str());
}

void AtomicWriter::write(const void* data, std::size_t size) {
  if (!file_) throw std::runtime_error(path_ + ": write after commit");
  if (size == 0) return;
  if (std::fwrite(data, 1, size, file_) != size) fail(path_, "write failed", errno);
}

void AtomicWriter::commit() {
  if (!file_) throw std::runtime_error(path_ + ": commit called twice");
  if (std::fflush(file_) != 0) fail(path_, "write failed", errno);
  if (::fsync(::fileno(file_)) != 0) fail(path_, "fsync failed", errno);
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fclose(f) != 0) fail(path_, "close failed", errno);
  if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    std::remove(temp_path_.c_str());
    fail(path_, "cannot rename \"" + temp_path_ + "\" over it", err);
  }
  committed_ = true;
  fsync_parent_dir(path_);
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicWriter w(path);
  w.write(contents);
  w.commit();
}

}  // namespace st::experiment
