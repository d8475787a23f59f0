// experiment/run_folder.h — what keeps a run folder's files from being lost:
//   RunFolderLock            one writer per run folder (train, resume): an exclusive flock on the
//                            folder itself, so it creates no file, and the kernel drops it when the
//                            process ends however it ends (kill -9 leaves no stale lock)
//   refuse_existing_run      a new run never replaces one that is there (use --resume, or another folder)
//   refuse_run_file          a command writing a file the user names (export --out) never writes over
//                            its input or a run's own files
//   remove_stale_temporaries the temp files of writers that died mid-write (experiment/atomic_file.h)
// Tests: tests/experiment/test_run_folder.cpp, tests/bad_input/cases_run_folder.sh
#pragma once
#include <string>

namespace st::experiment {

class RunFolderLock {
 public:
  // Locks the existing folder `dir` without waiting. Throws st::Error naming the folder (and the
  // holder's pid when the kernel tells it) when another process holds it, or when `dir` is no folder.
  explicit RunFolderLock(const std::string& dir);
  ~RunFolderLock();
  RunFolderLock(RunFolderLock&& other) noexcept;
  RunFolderLock& operator=(RunFolderLock&&) = delete;
  RunFolderLock(const RunFolderLock&) = delete;
  RunFolderLock& operator=(const RunFolderLock&) = delete;

 private:
  int fd_ = -1;
};

// Throws st::Error when `dir` holds a run a new run would replace: a checkpoint or a summary (a
// folder that never got past its first epoch has nothing to lose). Names what is there and what to
// do instead. A missing or empty folder passes.
void refuse_existing_run(const std::string& dir);

// Throws st::Error when writing `out` would replace `input` (the same file, however named) or one of
// the files of a run folder (config.json, metrics.jsonl, checkpoint.safetensors, summary.json next to
// a checkpoint or a config). `flag` names the option in the message.
void refuse_run_file(const std::string& out, const std::string& input, const std::string& flag);

// Removes "<run file>.tmp.<pid>" left in `dir` by a writer that was killed mid-write. Call only while
// holding the folder's lock: then no other writer of those files is running.
void remove_stale_temporaries(const std::string& dir);

}  // namespace st::experiment
