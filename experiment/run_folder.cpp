#include "experiment/run_folder.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/check.h"

namespace st::experiment {

namespace fs = std::filesystem;

namespace {

const char* const kRunFiles[] = {kConfigFileName, kMetricsFileName, kCheckpointFileName, kSummaryFileName};

// The pid holding a flock on the file behind `fd`, from /proc/locks (Linux); 0 when unknown.
long flock_holder(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return 0;
  std::ifstream locks("/proc/locks");
  // "1: FLOCK  ADVISORY  WRITE 4242 08:01:131090 0 EOF": the device is major:minor in hex.
  for (std::string line; std::getline(locks, line);) {
    std::istringstream in(line);
    std::string id, kind, mode, access, where;
    long pid = 0;
    if (!(in >> id >> kind >> mode >> access >> pid >> where) || kind != "FLOCK") continue;
    unsigned major_no = 0, minor_no = 0;
    unsigned long inode = 0;
    if (std::sscanf(where.c_str(), "%x:%x:%lu", &major_no, &minor_no, &inode) == 3 &&
        inode == st.st_ino && major_no == major(st.st_dev) && minor_no == minor(st.st_dev))
      return pid;
  }
  return 0;
}

int count_lines(const fs::path& file) {
  std::ifstream in(file);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

bool is_temporary_of(const std::string& name, const std::string& target) {
  const std::string prefix = target + ".tmp.";
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return false;
  return name.find_first_not_of("0123456789", prefix.size()) == std::string::npos;
}

}  // namespace

RunPaths::RunPaths(const std::string& run_dir)
    : dir(run_dir),
      config(run_dir + "/" + kConfigFileName),
      metrics(run_dir + "/" + kMetricsFileName),
      checkpoint(run_dir + "/" + kCheckpointFileName),
      summary(run_dir + "/" + kSummaryFileName) {}

std::string new_run_dir(const std::string& output_dir, const std::string& name) {
  const std::time_t t = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
  return output_dir + "/" + name + "-" + stamp;
}

std::string checkpoint_file(const std::string& target, const std::string& who) {
  std::error_code ec;
  if (!fs::is_directory(target, ec)) {
    ST_CHECK(fs::exists(target, ec), who, ": ", target, ": no such checkpoint file or run folder");
    return target;
  }
  const std::string ckpt = (fs::path(target) / kCheckpointFileName).string();
  ST_CHECK(fs::is_regular_file(ckpt, ec), who, ": ", target, ": a folder without ", kCheckpointFileName,
           " (expected a run folder or a checkpoint file)");
  return ckpt;
}

RunFolderLock::RunFolderLock(const std::string& dir) {
  fd_ = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  ST_CHECK(fd_ >= 0 || errno != ENOTDIR, "run folder \"", dir, "\" is a file, not a folder: choose another --run-dir");
  ST_CHECK(fd_ >= 0, "run folder \"", dir, "\": cannot open it (", std::strerror(errno), ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
  const int err = errno;
  const long pid = err == EWOULDBLOCK ? flock_holder(fd_) : 0;
  ::close(fd_);
  fd_ = -1;
  if (err != EWOULDBLOCK)
    throw Error("run folder \"" + dir + "\": cannot lock it (" + std::strerror(err) + ")");
  throw Error("run folder \"" + dir + "\" is in use by another sparsetrain process" +
              (pid > 0 ? " (pid " + std::to_string(pid) + ")" : std::string()) +
              ": wait for it to end (a new run can take another --run-dir)");
}

RunFolderLock::~RunFolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the only descriptor releases the flock
}

RunFolderLock::RunFolderLock(RunFolderLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }

void refuse_existing_run(const std::string& dir) {
  const fs::path d(dir);
  const bool finished = fs::exists(d / kSummaryFileName);
  if (!finished && !fs::exists(d / kCheckpointFileName)) return;
  std::string found;
  for (const char* f : kRunFiles) {
    if (!fs::exists(d / f)) continue;
    found += (found.empty() ? "" : ", ") + std::string(f);
    if (std::string(f) == kMetricsFileName) {
      const int n = count_lines(d / f);
      found += " with " + std::to_string(n) + (n == 1 ? " epoch" : " epochs");
    }
  }
  if (finished)
    throw Error("run folder \"" + dir + "\" already holds a finished run (" + found +
                "); choose another --run-dir, or delete the folder to train it again");
  throw Error("run folder \"" + dir + "\" already holds an interrupted run (" + found +
              "); continue it with `train --resume " + dir + "`, or choose another --run-dir");
}

void refuse_run_file(const std::string& out, const std::string& input, const std::string& flag) {
  std::error_code ec;
  ST_CHECK(!fs::equivalent(out, input, ec), flag, " \"", out, "\" is the input checkpoint \"", input,
           "\" itself: write to another file");
  const fs::path p(out);
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  const bool run_folder = fs::exists(dir / kCheckpointFileName) || fs::exists(dir / kConfigFileName);
  if (!run_folder) return;
  for (const char* f : kRunFiles)
    ST_CHECK(p.filename() != f, flag, " \"", out, "\" is a file of the run in \"", dir.string(),
             "\"; writing it would replace that run's ", f, ": write to another file");
}

void remove_stale_temporaries(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    for (const char* f : kRunFiles)
      if (is_temporary_of(name, f)) fs::remove(entry.path(), ec);
  }
}

}  // namespace st::experiment
