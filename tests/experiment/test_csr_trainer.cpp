// tests/experiment/test_csr_trainer.cpp — CSR execution in whole training runs: the switch changes
// speed, never results (docs/architecture.md invariants 2–4), logs its switches in metrics.jsonl, and a CSR
// run resumes bitwise; checkpoints store CSR layers as CSR and load them back.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "doctest/doctest.h"
#include "experiment/checkpoint.h"
#include "experiment/safetensors.h"
#include "experiment/setup.h"
#include "experiment/trainer.h"
#include "experiment/experiment_test_util.h"
#include "models/builder.h"

using namespace st;
using namespace st::experiment;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::metrics;
using test::quiet;

std::string temp_dir(const std::string& tag) { return test::fresh_temp_dir("st_csr_", tag); }

// The conv model of these tests (arch "layers").
constexpr const char* kConvLayers = R"([
      {"type": "conv2d", "out_channels": 6, "kernel": 3, "padding": 1}, {"type": "relu"},
      {"type": "maxpool2d", "kernel": 2}, {"type": "conv2d", "out_channels": 5, "kernel": 3, "stride": 2},
      {"type": "relu"}, {"type": "flatten"},
      {"type": "linear", "out_features": 16}, {"type": "relu"}, {"type": "linear", "out_features": 4}])";

json base(const char* arch = "mlp") { return test::synthetic_config("c", arch, kConvLayers); }

// Weights of a run's checkpoint by parameter name, dense (sparse layers scattered): loaded into a
// model built without weights, as `eval` does.
std::map<std::string, std::vector<float>> weights(const std::string& run_dir, const json& raw) {
  Config c = parse_config(raw, "test");
  auto model = models::build_model(model_spec(c), {1, 8, 8}, 4, c.seed, /*allocate=*/false);
  load_checkpoint(run_dir + "/checkpoint.safetensors", *model, nullptr);
  std::map<std::string, std::vector<float>> out;
  for (Parameter* p : model->parameters()) out[p->name] = dense_value(*p).to_vector();
  return out;
}

}  // namespace

TEST_CASE("csr trainer: same config twice gives bitwise identical checkpoints") {
  for (const char* pruning :
       {R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 3, "every_steps": 3}})",
        R"({"method": "rigl", "target": 0.8, "schedule": {"every_steps": 4, "end_epoch": 3}})",
        R"({"method": "iterative", "target": 0.75, "schedule": {"start_epoch": 1, "rounds": 2, "every": 2, "rewind": "epoch", "rewind_epoch": 1}})",
        R"({"method": "set", "target": 0.7})",
        R"({"method": "admm", "target": 0.7, "schedule": {"end_epoch": 3}, "l1": {"lambda": 1e-4}})"}) {
    INFO(pruning);
    const std::string dir = temp_dir("twice");
    json raw = base();
    raw["pruning"] = json::parse(pruning);
    Config c = parse_config(raw, "test");
    train(c, quiet(dir + "/a"));
    train(c, quiet(dir + "/b"));
    SafetensorsFile fa = read_safetensors(dir + "/a/checkpoint.safetensors");
    SafetensorsFile fb = read_safetensors(dir + "/b/checkpoint.safetensors");
    REQUIRE(fa.tensors.size() == fb.tensors.size());
    for (size_t i = 0; i < fa.tensors.size(); ++i) {
      INFO(fa.tensors[i].name);
      CHECK(fa.tensors[i].bytes == fb.tensors[i].bytes);
    }
  }
}

TEST_CASE("csr trainer: an interrupted and resumed CSR run ends bitwise identical") {
  for (const char* pruning :
       {R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 3, "every_steps": 3}})",
        R"({"method": "rigl", "target": 0.8, "schedule": {"every_steps": 4, "end_epoch": 3}})",
        R"({"method": "iterative", "target": 0.75, "schedule": {"start_epoch": 1, "rounds": 2, "every": 2, "rewind": "epoch", "rewind_epoch": 1}})",
        R"({"method": "set", "target": 0.7})",
        R"({"method": "gradual", "target": 0.9, "schedule": {"start_epoch": 0, "end_epoch": 3}})"}) {
    INFO(pruning);
    const std::string dir = temp_dir("resume");
    json raw = base();
    raw["pruning"] = json::parse(pruning);
    raw["sparse"] = {{"threshold", 0.5}};
    Config c = parse_config(raw, "test");
    train(c, quiet(dir + "/full"));
    RunOptions stop = quiet(dir + "/part");
    stop.stop_after_epochs = 2;
    train(c, stop);
    resume(dir + "/part", quiet(""));
    SafetensorsFile fa = read_safetensors(dir + "/full/checkpoint.safetensors");
    SafetensorsFile fb = read_safetensors(dir + "/part/checkpoint.safetensors");
    REQUIRE(fa.tensors.size() == fb.tensors.size());
    for (size_t i = 0; i < fa.tensors.size(); ++i) {
      INFO(fa.tensors[i].name);
      CHECK(fa.tensors[i].name == fb.tensors[i].name);
      CHECK(fa.tensors[i].bytes == fb.tensors[i].bytes);
    }
  }
}

TEST_CASE("csr trainer: gradual pruning with the switch ends as masked dense does (mlp and conv)") {
  for (const char* arch : {"mlp", "layers"}) {
    INFO(arch);
    const std::string dir = temp_dir("same");
    json raw = base(arch);
    raw["pruning"] = json::parse(R"({"method": "gradual", "target": 0.9, "schedule": {"start_epoch": 0, "end_epoch": 3}})");
    raw["sparse"] = {{"threshold", 0.3}};
    TrainResult sparse = train(parse_config(raw, "test"), quiet(dir + "/csr"));
    raw["sparse"] = {{"enabled", false}};
    TrainResult dense = train(parse_config(raw, "test"), quiet(dir + "/dense"));
    const auto m = metrics(dir + "/csr");
    REQUIRE(m.size() == 4);
    // The switch happened, is logged, and every prunable layer ended in CSR.
    int switches = 0;
    for (const auto& e : m) switches += static_cast<int>(e["switches"].size());
    CHECK(switches >= 2);
    for (const auto& [name, l] : m.back()["layers"].items()) CHECK(l["mode"] == "csr");
    // Named: a range-for over items() of a temporary would iterate freed memory.
    const auto dense_m = metrics(dir + "/dense");
    for (const auto& [name, l] : dense_m.back()["layers"].items()) CHECK(l["mode"] == "dense");
    CHECK(sparse.final_test_accuracy == doctest::Approx(dense.final_test_accuracy).epsilon(0.02));
    auto ws = weights(dir + "/csr", raw), wd = weights(dir + "/dense", raw);
    for (const auto& [name, v] : wd) {
      INFO(name);
      REQUIRE(ws.count(name));
      double max_diff = 0, max_abs = 0;
      for (size_t i = 0; i < v.size(); ++i) {
        max_diff = std::max(max_diff, static_cast<double>(std::abs(v[i] - ws[name][i])));
        max_abs = std::max(max_abs, static_cast<double>(std::abs(v[i])));
      }
      CHECK(max_diff <= 2e-3 * std::max(1.0, max_abs));
    }
    // Sparse layers are in the checkpoint as CSR only (O(nnz): no dense copy, no mask), and load
    // back sparse with equal weights.
    SafetensorsFile f = read_safetensors(dir + "/csr/checkpoint.safetensors");
    Config c = parse_config(raw, "test");
    auto model = models::build_model(model_spec(c), {1, 8, 8}, 4, c.seed, /*allocate=*/false);
    load_checkpoint(dir + "/csr/checkpoint.safetensors", *model, nullptr);
    int csr_params = 0;
    for (Parameter* p : model->parameters()) {
      if (!p->prunable) continue;
      REQUIRE(f.find(p->name + ".csr.row_ptr") != nullptr);
      CHECK(f.find(p->name + ".csr.row_ptr")->dtype == "I32");
      CHECK(f.find(p->name + ".csr.col_idx")->dtype == "I32");
      CHECK(f.find(p->name + ".csr.values")->dtype == "F32");
      CHECK(f.find(p->name) == nullptr);
      CHECK(f.find(p->name + ".mask") == nullptr);
      REQUIRE(p->sparse());
      ++csr_params;
      CHECK(f.find(p->name + ".csr.values")->bytes.size() == static_cast<size_t>(4 * p->csr->nnz()));
    }
    CHECK(csr_params >= 3);
  }
}

// With no pruner no hook ever makes a sparse weight dense: the checkpoint is written from the sparse
// form alone. A pruned model fine-tuned from --init-from without a pruning section trains and saves
// the same weights sparse as dense.
TEST_CASE("csr trainer: a CSR run with no pruner saves its current weights") {
  const std::string dir = temp_dir("nopruner");
  json raw = base();
  raw["pruning"] = json::parse(R"({"method": "gradual", "target": 0.9, "schedule": {"start_epoch": 0, "end_epoch": 2}})");
  train(parse_config(raw, "test"), quiet(dir + "/pruned"));
  raw.erase("pruning");
  raw["sparse"] = {{"threshold", 0.3}};
  RunOptions from = quiet(dir + "/csr");
  from.init_from = dir + "/pruned/checkpoint.safetensors";
  train(parse_config(raw, "test"), from);
  raw["sparse"] = {{"enabled", false}};
  from.run_dir = dir + "/dense";
  train(parse_config(raw, "test"), from);
  const auto csr_m = metrics(dir + "/csr");  // named: items() of a temporary would dangle
  for (const auto& [name, l] : csr_m.back()["layers"].items()) CHECK(l["mode"] == "csr");
  const auto ws = weights(dir + "/csr", raw), wd = weights(dir + "/dense", raw),
             w0 = weights(dir + "/pruned", raw);
  for (const auto& [name, v] : wd) {
    if (name.find(".csr.") != std::string::npos) continue;
    INFO(name);
    REQUIRE(ws.count(name));
    double max_diff = 0, moved = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      max_diff = std::max(max_diff, static_cast<double>(std::abs(v[i] - ws.at(name)[i])));
      moved = std::max(moved, static_cast<double>(std::abs(v[i] - w0.at(name)[i])));
    }
    CHECK(moved > 1e-3);  // the fine-tuning changed the weights, so stale ones would show
    CHECK(max_diff <= 1e-4);
  }
}
