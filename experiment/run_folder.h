// experiment/run_folder.h — a run folder: where its files are, and what keeps them from being lost.
//   RunPaths                 the paths of a run folder's files; the only place that names them
//   checkpoint_file          a run folder or a checkpoint file, as a command takes it -> the checkpoint
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

// The files of the run in `dir`:
//   config.json              the resolved config (every key, defaults filled)
//   metrics.jsonl            one JSON line per epoch
//   checkpoint.safetensors   weights, optimizer and pruner state, epoch, RNG states, config
//   summary.json             final figures, written when the run reaches its last epoch
struct RunPaths {
  explicit RunPaths(const std::string& dir);
  std::string dir, config, metrics, checkpoint, summary;
};
inline constexpr const char kConfigFileName[] = "config.json";
inline constexpr const char kMetricsFileName[] = "metrics.jsonl";
inline constexpr const char kCheckpointFileName[] = "checkpoint.safetensors";
inline constexpr const char kSummaryFileName[] = "summary.json";

// The folder of a new run: "<output_dir>/<name>-<YYYYmmdd-HHMMSS>" (local time).
std::string new_run_dir(const std::string& output_dir, const std::string& name);

// A run folder or a checkpoint file, as eval, info, export, train --init-from and a distillation
// teacher take it -> the checkpoint file. `who` names the command or flag in the error when neither
// is there.
std::string checkpoint_file(const std::string& target, const std::string& who);

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
