// The closing summary of a run (experiment/run_summary.h): which layers ended in CSR and since when,
// the median epoch times before and after the switch, and what summary.json records of it.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "experiment/config.h"
#include "experiment/memory_estimate.h"
#include "experiment/run_summary.h"
#include "experiment/trainer.h"
#include "experiment_test_util.h"

using namespace st;
using namespace st::experiment;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// One metrics.jsonl line: the epoch, its training seconds and the mode of fc1 and fc2 at its end.
json epoch_line(int epoch, double seconds, const char* fc1_mode, const char* fc2_mode, int64_t fc1_nnz) {
  return {{"epoch", epoch},
          {"epoch_seconds", seconds},
          {"test_accuracy", 0.5 + 0.1 * epoch},
          {"sparsity", 0.9},
          {"layers",
           {{"fc1.weight", {{"params", 1000}, {"nonzeros", fc1_nnz}, {"mode", fc1_mode}}},
            {"fc2.weight", {{"params", 100}, {"nonzeros", 100}, {"mode", fc2_mode}}}}}};
}

}  // namespace

TEST_CASE("run summary: CSR layers, epoch times before and after the switch, text") {
  // Epochs 1-2 dense, fc1 switches during epoch 3, epochs 4-5 run whole in CSR; fc2 stays dense.
  const std::vector<json> metrics = {epoch_line(1, 10, "dense", "dense", 1000),
                                     epoch_line(2, 12, "dense", "dense", 500),
                                     epoch_line(3, 7, "csr", "dense", 100),
                                     epoch_line(4, 4, "csr", "dense", 100),
                                     epoch_line(5, 5, "csr", "dense", 100)};
  const RunSummary s = summarize_run(metrics, "runs/x", 12345);
  CHECK(s.epochs == 5);
  CHECK(s.test_accuracy == doctest::Approx(1.0));
  CHECK(s.weights == 1100);
  CHECK(s.nonzeros == 200);
  REQUIRE(s.csr_layers.size() == 1);
  CHECK(s.csr_layers[0].weight == "fc1.weight");
  CHECK(s.csr_layers[0].from_epoch == 3);
  CHECK(s.dense_layers == std::vector<std::string>{"fc2.weight"});
  CHECK(s.dense_epoch_seconds == doctest::Approx(11));  // epochs 1, 2
  CHECK(s.csr_epoch_seconds == doctest::Approx(4.5));   // 4, 5: epoch 3 began dense
  const std::string text = s.to_text();
  for (const char* words : {"test accuracy 100.00% after 5 epochs", "sparsity 90.0%: 200 of 1100 weights nonzero",
                            "fc1.weight from epoch 3", "(dense: fc2.weight)", "11.0 s dense, 4.50 s in CSR: 2.44x faster",
                            "checkpoint 12.3 kB | run folder runs/x"}) {
    INFO(words);
    CHECK(text.find(words) != std::string::npos);
  }
  const json j = s.to_json();
  CHECK(j["csr_layers"]["fc1.weight"]["from_epoch"] == 3);
  CHECK(j["csr_epoch_speedup"].get<double>() == doctest::Approx(11 / 4.5));
  CHECK(j["checkpoint_bytes"] == 12345);

  // A layer that went back to dense and switched again counts from its last switch.
  std::vector<json> back = metrics;
  back[3]["layers"]["fc1.weight"]["mode"] = "dense";
  CHECK(summarize_run(back, "r", 1).csr_layers.at(0).from_epoch == 5);
  // No layer in CSR: no CSR time, and the text says every layer ran dense.
  const RunSummary dense = summarize_run({epoch_line(1, 3, "dense", "dense", 1000)}, "r", -1);
  CHECK(dense.csr_layers.empty());
  CHECK(dense.csr_epoch_seconds == -1);
  CHECK(dense.to_text().find("CSR: no layer") != std::string::npos);
  CHECK(dense.to_text().find("checkpoint none") != std::string::npos);
}

TEST_CASE("run summary: a pruned synthetic run records it in summary.json") {
  const std::string dir = test::fresh_temp_dir("st_summary_", "gradual");
  json raw = test::synthetic_config("summary", "mlp", nullptr);
  raw["train"]["epochs"] = 5;
  raw["pruning"] = json::parse(R"({"method": "gradual", "target": 0.9, "schedule": {"start_epoch": 1, "end_epoch": 3}})");
  raw["sparse"] = {{"threshold", 0.5}};
  train(parse_config(raw, "test"), test::quiet(dir + "/run"));
  json s;
  std::ifstream(dir + "/run/summary.json") >> s;
  CHECK(s["sparsity"].get<double>() > 0.85);
  CHECK(s["weights_nonzero"].get<int64_t>() < s["weights"].get<int64_t>() / 5);
  REQUIRE(s["csr_layers"].contains("fc1.weight"));
  const int from = s["csr_layers"]["fc1.weight"]["from_epoch"];
  CHECK(from >= 2);  // dense until the pruning schedule started
  CHECK(from <= 4);
  CHECK(s["median_epoch_seconds_dense"].get<double>() > 0);
  CHECK(s["median_epoch_seconds_csr"].get<double>() > 0);
  CHECK(s["checkpoint_bytes"].get<int64_t>() == static_cast<int64_t>(fs::file_size(dir + "/run/checkpoint.safetensors")));
  // Memory the user can see: each epoch's peak resident bytes, and the run's largest in the summary.
  int64_t peak = 0;
  std::ifstream metrics(dir + "/run/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) peak = std::max(peak, json::parse(line)["peak_resident_bytes"].get<int64_t>());
  CHECK(peak > 0);
  CHECK(s["peak_resident_bytes"].get<int64_t>() == peak);
  fs::remove_all(dir);
}

TEST_CASE("run summary: the peak resident memory is the largest an epoch recorded") {
  std::vector<json> metrics = {{{"epoch", 1}, {"test_accuracy", 0.5}, {"peak_resident_bytes", 3000000}},
                               {{"epoch", 2}, {"test_accuracy", 0.6}, {"peak_resident_bytes", 7000000}},
                               {{"epoch", 3}, {"test_accuracy", 0.7}, {"peak_resident_bytes", 5000000}}};
  const RunSummary s = summarize_run(metrics, "runs/x", 12300);
  CHECK(s.peak_resident_bytes == 7000000);
  CHECK(s.to_json()["peak_resident_bytes"] == 7000000);
  CHECK(s.to_text().find("checkpoint 12.3 kB | peak memory 7.0 MB | run folder runs/x") != std::string::npos);
  metrics = {{{"epoch", 1}, {"test_accuracy", 0.5}}};  // a run folder written before the field existed
  CHECK(summarize_run(metrics, "runs/x", -1).peak_resident_bytes == -1);
  CHECK_FALSE(summarize_run(metrics, "runs/x", -1).to_json().contains("peak_resident_bytes"));
  CHECK(peak_resident_bytes() > 0);
  CHECK(bytes_text(999) == "999 bytes");
  CHECK(bytes_text(1.5e9) == "1.50 GB");
}

TEST_CASE("run summary: sparsities print with the decimals that keep them below 100%") {
  CHECK(sparsity_text(0.95) == "95.0%");
  CHECK(sparsity_text(0) == "0.0%");
  CHECK(sparsity_text(0.9998) == "99.98%");
  CHECK(sparsity_text(0.99983512) == "99.98%");
  CHECK(sparsity_text(0.9999984) == "99.9998%");
  CHECK(sparsity_text(1) == "100.0%");
}
