// Pruning inside the training loop on the synthetic dataset: sparsity reaches the target and is
// reported, masks survive checkpoints (--resume exact, --init-from keeps sparsity), fine-tune epochs
// and distillation run, layer-dependent config errors stop the run before training, and
// export --compact scores the same as the masked model.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "experiment/checkpoint.h"
#include "experiment/config.h"
#include "experiment/export.h"
#include "experiment/safetensors.h"
#include "experiment/setup.h"
#include "experiment/trainer.h"
#include "experiment/experiment_test_util.h"
#include "data/dataset.h"

using namespace st;
using namespace st::experiment;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::metrics;
using test::quiet;

std::string temp_dir(const std::string& tag) { return test::fresh_temp_dir("st_prune_", tag); }

// The conv model of these tests (arch "layers").
constexpr const char* kConvLayers = R"([
      {"type": "conv2d", "out_channels": 6, "kernel": 3, "padding": 1}, {"type": "relu"},
      {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"},
      {"type": "linear", "out_features": 16}, {"type": "relu"}, {"type": "linear", "out_features": 4}])";

json base(const char* arch = "mlp") { return test::synthetic_config("p", arch, kConvLayers); }

Config with_pruning(json raw, const char* pruning) {
  raw["pruning"] = json::parse(pruning);
  return parse_config(raw, "test");
}

const NamedTensor* tensor(const SafetensorsFile& f, const std::string& name) { return f.find(name); }

void check_same_tensors(const std::string& a, const std::string& b) {
  SafetensorsFile fa = read_safetensors(a + "/checkpoint.safetensors");
  SafetensorsFile fb = read_safetensors(b + "/checkpoint.safetensors");
  REQUIRE(fa.tensors.size() == fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    CAPTURE(fa.tensors[i].name);
    CHECK(fa.tensors[i].name == fb.tensors[i].name);
    CHECK(fa.tensors[i].bytes == fb.tensors[i].bytes);
  }
}

}  // namespace

TEST_CASE("pruning trainer: one-shot then fine-tune reaches the target, reports it, saves masks") {
  const std::string dir = temp_dir("oneshot");
  Config c = with_pruning(base(), R"({"method": "one_shot", "target": 0.9, "schedule": {"epoch": 2},
                                      "finetune": {"epochs": 1, "lr_scale": 0.5}})");
  TrainResult r = train(c, quiet(dir + "/run"));
  REQUIRE(r.epochs.size() == 5);
  const auto m = metrics(dir + "/run");
  REQUIRE(m.size() == 5);
  CHECK(m[1]["sparsity"] == 0.0);
  CHECK(m[2]["sparsity"].get<double>() == doctest::Approx(0.9).epsilon(0.01));
  CHECK(m[4]["phase"] == "finetune");
  CHECK(m[3]["phase"] == "train");
  CHECK(m[4]["lr"].get<double>() == doctest::Approx(0.025));
  for (const char* k : {"nonzeros", "params", "dense_bytes", "sparse_bytes", "macs", "dense_macs"}) CHECK(m[4].contains(k));
  CHECK(m[4]["layers"]["fc1.weight"]["sparsity"].get<double>() == doctest::Approx(0.9).epsilon(0.01));
  CHECK(m[4]["macs"].get<int64_t>() < m[4]["dense_macs"].get<int64_t>() / 5);
  CHECK(r.final_test_accuracy > 0.5);
  // At 90% fc1 is sparse (threshold 0.7): stored as CSR alone, its nonzeros' worth.
  SafetensorsFile f = read_safetensors(dir + "/run/checkpoint.safetensors");
  const int64_t fc1_nonzeros = m[4]["layers"]["fc1.weight"]["nonzeros"].get<int64_t>();
  REQUIRE(tensor(f, "fc1.weight.csr.values") != nullptr);
  CHECK(tensor(f, "fc1.weight.csr.values")->bytes.size() == static_cast<size_t>(4 * fc1_nonzeros));
  CHECK(tensor(f, "fc1.weight") == nullptr);
  CHECK(tensor(f, "mask.fc1.weight") == nullptr);
  // Without the CSR switch the weight stays dense: stored with its mask.
  c.sparse.enabled = false;
  train(c, quiet(dir + "/dense"));
  f = read_safetensors(dir + "/dense/checkpoint.safetensors");
  const NamedTensor* mask = tensor(f, "mask.fc1.weight");
  REQUIRE(mask != nullptr);
  CHECK(mask->dtype == "U8");
  // Masked weights are stored as exact zeros.
  const NamedTensor* w = tensor(f, "fc1.weight");
  const float* wv = reinterpret_cast<const float*>(w->bytes.data());
  for (size_t i = 0; i < mask->bytes.size(); ++i)
    if (!mask->bytes[i]) CHECK(wv[i] == 0.f);
  CHECK(tensor(f, "mask.fc1.bias") == nullptr);
}

TEST_CASE("pruning trainer: an interrupted and resumed pruned run ends with exactly the same weights") {
  for (const char* pruning :
       {R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 3, "every_steps": 3}})",
        R"({"method": "rigl", "target": 0.8, "schedule": {"every_steps": 4, "end_epoch": 3}})",
        R"({"method": "iterative", "target": 0.75, "schedule": {"start_epoch": 1, "rounds": 2, "every": 2, "rewind": "epoch", "rewind_epoch": 1}})",
        R"({"method": "set", "target": 0.7})",
        R"({"method": "admm", "target": 0.7, "schedule": {"end_epoch": 3}, "l1": {"lambda": 1e-4}})"}) {
    CAPTURE(pruning);
    const std::string dir = temp_dir("resume");
    Config c = with_pruning(base(), pruning);
    train(c, quiet(dir + "/full"));
    RunOptions stop = quiet(dir + "/part");
    stop.stop_after_epochs = 2;
    train(c, stop);
    resume(dir + "/part", quiet(""));
    check_same_tensors(dir + "/full", dir + "/part");
    CHECK(metrics(dir + "/part").size() == 4);
    CHECK(metrics(dir + "/full").back()["sparsity"].get<double>() > 0.6);
  }
}

TEST_CASE("pruning trainer: --init-from keeps the sparsity; bad layer-dependent configs stop at start-up") {
  const std::string dir = temp_dir("init");
  Config c = with_pruning(base(), R"({"method": "one_shot", "target": 0.75})");
  train(c, quiet(dir + "/a"));
  json raw = base();
  raw["train"]["epochs"] = 1;
  RunOptions o = quiet(dir + "/b");
  o.init_from = dir + "/a/checkpoint.safetensors";
  train(parse_config(raw, "test"), o);
  CHECK(metrics(dir + "/b")[0]["sparsity"].get<double>() == doctest::Approx(0.75).epsilon(0.01));

  auto error_of = [&](const char* pruning) {
    try {
      train(with_pruning(base(), pruning), quiet(dir + "/bad"));
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  };
  CHECK(error_of(R"({"method": "one_shot", "granularity": {"type": "nm", "n": 2, "m": 5}})").find("pruning.granularity.m") !=
        std::string::npos);
  CHECK(error_of(R"({"method": "one_shot", "target": 0.5, "distribution": {"keep_dense": ["conv1"]}})")
            .find("pruning.distribution.keep_dense[0]") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/bad/metrics.jsonl"));
}

TEST_CASE("pruning trainer: data-dependent criteria, structured pruning, and export --compact") {
  const std::string dir = temp_dir("compact");
  for (const char* crit : {"taylor", "activation", "fisher", "gradient"}) {
    CAPTURE(crit);
    json raw = base("layers");
    raw["train"]["epochs"] = 2;
    const Config c = with_pruning(raw, (std::string(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 1},
        "granularity": {"type": "filter"}, "criterion": {"type": ")") + crit + R"(", "batches": 2}})").c_str());
    const std::string run = dir + "/" + crit;
    train(c, quiet(run));
    ExportResult r = export_compact(run, dir + "/" + crit + "_small.safetensors");
    CHECK(r.params_after < r.params_before * 0.6);
    // The compact model scores exactly as the masked one on the test split.
    CheckpointInfo big = read_checkpoint_info(run + "/checkpoint.safetensors");
    CheckpointInfo small = read_checkpoint_info(dir + "/" + crit + "_small.safetensors");
    Config bc = parse_config(big.config, "big"), sc = parse_config(small.config, "small");
    CHECK(sc.model.arch == Arch::layers);
    CHECK(sc.model.layers[0].out_channels == 3);
    CHECK(sc.model.layers[4].out_features == 8);
    data::DatasetSplits data = data::load_dataset(data_options(bc));
    const Shape in{data.test.channels, data.test.height, data.test.width};
    auto bm = models::build_model(model_spec(bc), in, 4, 1);
    auto sm = models::build_model(model_spec(sc), in, 4, 1);
    load_checkpoint(run + "/checkpoint.safetensors", *bm, nullptr);
    load_checkpoint(dir + "/" + crit + "_small.safetensors", *sm, nullptr);
    EvalResult eb = evaluate(*bm, data.test, 100), es = evaluate(*sm, data.test, 100);
    CHECK(eb.accuracy == es.accuracy);
    CHECK(eb.loss == doctest::Approx(es.loss).epsilon(1e-5));
  }
}

TEST_CASE("pruning trainer: knowledge distillation from a teacher checkpoint, neighbourhood and static ERK") {
  const std::string dir = temp_dir("kd");
  json t = base();
  t["train"]["epochs"] = 2;
  train(parse_config(t, "teacher"), quiet(dir + "/teacher"));
  json s = base();
  s["model"]["hidden"] = {16, 8};
  s["train"]["epochs"] = 2;
  s["pruning"] = json::parse(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "neuron"},
      "criterion": {"type": "neighbourhood"}, "distill": {"temperature": 2, "alpha": 0.7}})");
  s["pruning"]["distill"]["teacher"] = dir + "/teacher";
  TrainResult r = train(parse_config(s, "student"), quiet(dir + "/student"));
  CHECK(std::isfinite(r.epochs.back().train_loss));
  CHECK(r.final_test_accuracy > 0.4);
  s["pruning"]["distill"]["teacher"] = dir + "/nowhere";
  try {
    train(parse_config(s, "student"), quiet(dir + "/student2"));
    CHECK(false);
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("pruning.distill.teacher") != std::string::npos);
  }
  json one_epoch = base();
  one_epoch["train"]["epochs"] = 1;
  const Config st = with_pruning(one_epoch, R"({"method": "static", "target": 0.9})");
  train(st, quiet(dir + "/static"));
  CHECK(metrics(dir + "/static")[0]["sparsity"].get<double>() == doctest::Approx(0.9).epsilon(0.01));
}
