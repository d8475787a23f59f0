// tests/experiment/experiment_test_util.h — helpers shared by the trainer suites.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <string>

namespace st::test {

// An empty directory under the system temp dir, unique per test process: <prefix><tag>_<pid>.
inline std::string fresh_temp_dir(const std::string& prefix, const std::string& tag) {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / (prefix + tag + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

}  // namespace st::test
