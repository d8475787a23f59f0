// tests/experiment/experiment_test_util.h — helpers shared by the trainer suites.
#pragma once
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "experiment/trainer.h"

namespace st::test {

// An empty directory under the system temp dir, unique per test process: <prefix><tag>_<pid>.
inline std::string fresh_temp_dir(const std::string& prefix, const std::string& tag) {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / (prefix + tag + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// The small trainer-test config of the CPU suites: 400 train / 200 test synthetic 8×8 images of 4
// classes, 4 epochs of batch 50, SGD with momentum. arch "mlp" gets hidden layers {32, 16};
// "layers" gets `layers` (a JSON array of layer objects).
inline nlohmann::json synthetic_config(const std::string& name, const std::string& arch,
                                       const char* layers) {
  nlohmann::json raw = {
      {"name", name},
      {"seed", 5},
      {"threads", 2},
      {"data", {{"dataset", "synthetic"},
                {"synthetic", {{"train", 400}, {"test", 200}, {"classes", 4}, {"height", 8}, {"width", 8}}}}},
      {"model", {{"arch", arch}}},
      {"train", {{"epochs", 4}, {"batch_size", 50}, {"eval_batch_size", 100}}},
      {"optimizer", {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}}},
  };
  if (arch == "mlp") raw["model"]["hidden"] = {32, 16};
  if (arch == "layers") raw["model"]["layers"] = nlohmann::json::parse(layers);
  return raw;
}

// Options for a test run: its folder, no console output, and the device (none = the config's).
inline experiment::RunOptions quiet(const std::string& dir, std::optional<st::Device> device = std::nullopt) {
  experiment::RunOptions o;
  o.run_dir = dir;
  o.quiet = true;
  o.device = device;
  return o;
}

// The run's metrics.jsonl, a JSON object per epoch.
inline std::vector<nlohmann::json> metrics(const std::string& run_dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace st::test
