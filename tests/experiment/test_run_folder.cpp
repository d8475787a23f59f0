// tests/experiment/test_run_folder.cpp — nothing a run wrote is lost: a new run refuses a folder that
// holds one, one process at a time writes into a folder (and a killed one leaves no lock), a failing
// start leaves every file byte-identical, temp files of killed writers do not accumulate, and export
// never writes over its input or a run's files. The paths of a run folder's files come from RunPaths.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "experiment/config.h"
#include "experiment/export.h"
#include "experiment/run_folder.h"
#include "experiment/trainer.h"
#include "experiment_test_util.h"

using namespace st;
using namespace st::experiment;
namespace fs = std::filesystem;

namespace {

Config config(int epochs = 2) {
  nlohmann::json raw = test::synthetic_config("rf", "mlp", nullptr);
  raw["train"]["epochs"] = epochs;
  return parse_config(raw, "test");
}

// Every file under `dir` with its bytes: two snapshots are equal when nothing changed.
std::map<std::string, std::string> snapshot(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    files[e.path().string()] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  return files;
}

doctest::Contains contains(const std::string& s) { return doctest::Contains(s.c_str()); }

// A run stopped after its first epoch of two: what --resume continues.
std::string interrupted_run(const std::string& dir) {
  RunOptions o = test::quiet(dir);
  o.stop_after_epochs = 1;
  train(config(), o);
  return dir;
}

}  // namespace

TEST_CASE("run folder: a new run refuses a folder that holds a run; an empty one is fine") {
  const std::string dir = test::fresh_temp_dir("st_rf_", "existing");
  const std::string run = interrupted_run(dir + "/run");
  const auto before = snapshot(dir);
  CHECK_THROWS_WITH(train(config(), test::quiet(run)),
                    contains("already holds an interrupted run (config.json, metrics.jsonl with 1 epoch, "
                                      "checkpoint.safetensors); continue it with `train --resume " + run + "`"));
  RunOptions init = test::quiet(run);
  init.init_from = run + "/checkpoint.safetensors";
  CHECK_THROWS_WITH(train(config(), init), doctest::Contains("already holds an interrupted run"));
  CHECK(snapshot(dir) == before);

  resume(run, test::quiet(""));
  const auto finished = snapshot(dir);
  CHECK_THROWS_WITH(train(config(), test::quiet(run)), doctest::Contains("already holds a finished run"));
  CHECK_THROWS_WITH(resume(run, test::quiet("")), doctest::Contains("finished run (summary.json): there is nothing to resume"));
  CHECK(snapshot(dir) == finished);

  fs::create_directories(dir + "/empty");
  train(config(), test::quiet(dir + "/empty"));
  CHECK(fs::exists(dir + "/empty/summary.json"));
  fs::remove_all(dir);
}

TEST_CASE("run folder: one writer at a time; the lock goes with its process, even on kill -9") {
  const std::string dir = test::fresh_temp_dir("st_rf_", "lock");
  const std::string run = interrupted_run(dir + "/run");
  const auto before = snapshot(dir);
  {
    RunFolderLock held(run);  // as another process would: flock is per open file, not per process
    const std::string in_use = "run folder \"" + run + "\" is in use by another sparsetrain process (pid " +
                               std::to_string(getpid()) + ")";
    CHECK_THROWS_WITH(resume(run, test::quiet("")), contains(in_use));
    CHECK_THROWS_WITH(train(config(), test::quiet(run)), contains(in_use));
    CHECK_THROWS_WITH(RunFolderLock{run}, contains(in_use));
  }
  CHECK(snapshot(dir) == before);

  // A child takes the lock and is killed: the kernel releases it, no stale lock file is left.
  int ready[2];
  REQUIRE(pipe(ready) == 0);
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    const int fd = open(run.c_str(), O_RDONLY | O_DIRECTORY);
    const char ok = fd >= 0 && flock(fd, LOCK_EX) == 0 ? 'y' : 'n';
    (void)!write(ready[1], &ok, 1);
    pause();
    _exit(0);
  }
  char ok = 0;
  REQUIRE(read(ready[0], &ok, 1) == 1);
  REQUIRE(ok == 'y');
  CHECK_THROWS_WITH(resume(run, test::quiet("")),
                    contains("in use by another sparsetrain process (pid " + std::to_string(child) + ")"));
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
  CHECK(resume(run, test::quiet("")).epochs.size() == 1);
  fs::remove_all(dir);
}

TEST_CASE("run folder: a resume that fails leaves every file byte-identical") {
  const std::string dir = test::fresh_temp_dir("st_rf_", "failing");
  const std::string run = interrupted_run(dir + "/run");
  const std::string stale = run + "/checkpoint.safetensors.tmp.999999";
  std::ofstream(stale) << "half a checkpoint";
  const auto before = snapshot(dir);
  CHECK_THROWS_WITH(resume(run + "/config.json", test::quiet("")), doctest::Contains("not a run folder"));
  // A damaged checkpoint.
  fs::copy_file(run + "/checkpoint.safetensors", dir + "/good.safetensors");
  fs::resize_file(run + "/checkpoint.safetensors", 1000);
  const auto damaged = snapshot(dir);
  CHECK_THROWS_WITH(resume(run, test::quiet("")), doctest::Contains("checkpoint.safetensors"));
  CHECK(snapshot(dir) == damaged);
  fs::copy_file(dir + "/good.safetensors", run + "/checkpoint.safetensors", fs::copy_options::overwrite_existing);
  fs::remove(dir + "/good.safetensors");
  CHECK(snapshot(dir) == before);
  // A dataset that is gone.
  std::string text;
  {
    std::ifstream in(run + "/config.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  nlohmann::json saved = nlohmann::json::parse(text);
  saved["data"] = {{"dataset", "mnist"}, {"dir", dir + "/no_such_dataset"}};
  std::ofstream(run + "/config.json") << saved.dump(2);
  const auto no_data = snapshot(dir);
  CHECK_THROWS_WITH(resume(run, test::quiet("")), doctest::Contains("no_such_dataset"));
  CHECK(snapshot(dir) == no_data);
  std::ofstream(run + "/config.json") << text;
  CHECK(snapshot(dir) == before);
  // The run then resumes, and the temp file of the writer that died is gone.
  CHECK(resume(run, test::quiet("")).epochs.size() == 1);
  CHECK_FALSE(fs::exists(stale));
  fs::remove_all(dir);
}

TEST_CASE("run folder: temp files of killed writers are removed at the next start, nothing else") {
  const std::string dir = test::fresh_temp_dir("st_rf_", "stale");
  for (const char* f : {"checkpoint.safetensors.tmp.4242", "metrics.jsonl.tmp.7", "summary.json.tmp.12",
                        "config.json.tmp.1", "notes.txt.tmp.5", "checkpoint.safetensors.tmp.x"})
    std::ofstream(dir + "/" + f) << "x";
  train(config(1), test::quiet(dir));
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) left.push_back(e.path().filename().string());
  std::sort(left.begin(), left.end());
  CHECK(left == std::vector<std::string>{"checkpoint.safetensors", "checkpoint.safetensors.tmp.x", "config.json",
                                         "metrics.jsonl", "notes.txt.tmp.5", "summary.json"});
  fs::remove_all(dir);
}

TEST_CASE("run folder: export --out never writes over its input or a run's own files") {
  const std::string dir = test::fresh_temp_dir("st_rf_", "export");
  const std::string run = interrupted_run(dir + "/run");
  const std::string other = interrupted_run(dir + "/other");
  const auto before = snapshot(dir);
  CHECK_THROWS_WITH(export_compact(run, run + "/./checkpoint.safetensors"),
                    doctest::Contains("is the input checkpoint"));
  CHECK_THROWS_WITH(export_compact(run + "/checkpoint.safetensors", run + "/../run/checkpoint.safetensors"),
                    doctest::Contains("is the input checkpoint"));
  for (const char* f : {"checkpoint.safetensors", "config.json", "metrics.jsonl", "summary.json"})
    CHECK_THROWS_WITH(export_compact(run, other + "/" + f),
                      contains(std::string("is a file of the run in \"") + other + "\""));
  CHECK(snapshot(dir) == before);
  // A new file, also inside a run folder, and an earlier export are fine.
  export_compact(run, run + "/compact.safetensors");
  export_compact(run, run + "/compact.safetensors");
  export_compact(run, dir + "/compact.safetensors");
  fs::remove_all(dir);
}

TEST_CASE("run folder: RunPaths names the files a run writes; checkpoint_file resolves a folder to its checkpoint") {
  const RunPaths p("runs/a");
  CHECK(p.dir == "runs/a");
  CHECK(p.config == "runs/a/config.json");
  CHECK(p.metrics == "runs/a/metrics.jsonl");
  CHECK(p.checkpoint == "runs/a/checkpoint.safetensors");
  CHECK(p.summary == "runs/a/summary.json");
  const std::string made = new_run_dir("out", "mnist");
  CHECK(made.rfind("out/mnist-", 0) == 0);
  CHECK(made.size() == std::string("out/mnist-20260101-120000").size());

  const std::string dir = test::fresh_temp_dir("st_rf_", "paths") + "/run";
  train(config(1), test::quiet(dir));
  const RunPaths files(dir);
  std::vector<std::string> written;
  for (const auto& e : fs::directory_iterator(dir)) written.push_back(e.path().string());
  std::sort(written.begin(), written.end());
  std::vector<std::string> expected{files.checkpoint, files.config, files.metrics, files.summary};
  std::sort(expected.begin(), expected.end());
  CHECK(written == expected);
  CHECK(checkpoint_file(dir, "eval") == files.checkpoint);
  CHECK(checkpoint_file(files.checkpoint, "eval") == files.checkpoint);
  fs::remove_all(fs::path(dir).parent_path());
}
