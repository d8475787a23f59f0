// The training loop end to end on the synthetic dataset: it learns, it is deterministic, a resumed
// run ends with exactly the weights of an uninterrupted one, and --init-from loads weights.
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "experiment/checkpoint.h"
#include "experiment_test_util.h"
#include "experiment/config.h"
#include "experiment/safetensors.h"
#include "experiment/trainer.h"

using namespace st;
using namespace st::experiment;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& tag) {
  fs::path p = fs::temp_directory_path() / ("st_trainer_" + tag + "_" + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

Config small_config(const std::string& arch = "mlp") {
  nlohmann::json raw = {
      {"name", "t"},
      {"seed", 5},
      {"threads", 2},
      {"data", {{"dataset", "synthetic"},
                {"validation", 128},
                {"synthetic", {{"train", 640}, {"test", 256}, {"classes", 4}, {"height", 8}, {"width", 8}}}}},
      {"model", {{"arch", arch}}},
      {"train", {{"epochs", 3}, {"batch_size", 50}, {"eval_batch_size", 100}}},
      {"optimizer", {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}}},
      {"lr_schedule", {{"type", "cosine"}, {"warmup_epochs", 1}}},
  };
  if (arch == "mlp") raw["model"]["hidden"] = {32};
  if (arch == "layers") {
    raw["model"]["layers"] = nlohmann::json::parse(R"([
      {"type": "conv2d", "out_channels": 4, "kernel": 3, "padding": 1}, {"type": "relu"},
      {"type": "maxpool2d", "kernel": 2}, {"type": "flatten"}, {"type": "dropout", "p": 0.25},
      {"type": "linear", "out_features": 4}])");
  }
  return parse_config(raw, "test");
}

std::vector<NamedTensor> weights(const std::string& run_dir) {
  return read_safetensors(run_dir + "/checkpoint.safetensors").tensors;
}

}  // namespace

TEST_CASE("trainer: learns the synthetic problem and writes the run folder") {
  const std::string dir = temp_dir("learn");
  RunOptions o;
  o.run_dir = dir + "/run";
  o.quiet = true;
  TrainResult r = train(small_config(), o);
  REQUIRE(r.epochs.size() == 3);
  CHECK(r.final_test_accuracy > 0.9);
  CHECK(r.epochs.back().train_loss < r.epochs.front().train_loss);
  CHECK(r.epochs.back().val_accuracy > 0.9);
  for (const char* f : {"config.json", "metrics.jsonl", "checkpoint.safetensors", "summary.json"})
    CHECK(fs::exists(o.run_dir + "/" + f));
  std::ifstream metrics(o.run_dir + "/metrics.jsonl");
  std::string line;
  int lines = 0;
  while (std::getline(metrics, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j["epoch"] == ++lines);
    for (const char* k : {"train_loss", "train_accuracy", "val_accuracy", "test_accuracy", "lr",
                          "epoch_seconds", "samples_per_second"})
      CHECK(j.contains(k));
  }
  CHECK(lines == 3);
  // The saved config re-reads to the same config.
  CHECK(load_config(o.run_dir + "/config.json") == small_config());
  fs::remove_all(dir);
}

TEST_CASE("trainer: same config, seed and threads give identical metrics and weights") {
  const std::string dir = temp_dir("det");
  for (std::string arch : {"mlp", "layers"}) {
    CAPTURE(arch);
    RunOptions a, b;
    a.quiet = b.quiet = true;
    a.run_dir = dir + "/a_" + arch;
    b.run_dir = dir + "/b_" + arch;
    TrainResult ra = train(small_config(arch), a);
    TrainResult rb = train(small_config(arch), b);
    for (size_t e = 0; e < ra.epochs.size(); ++e) {
      CHECK(ra.epochs[e].train_loss == rb.epochs[e].train_loss);
      CHECK(ra.epochs[e].test_accuracy == rb.epochs[e].test_accuracy);
    }
    auto wa = weights(a.run_dir), wb = weights(b.run_dir);
    REQUIRE(wa.size() == wb.size());
    for (size_t i = 0; i < wa.size(); ++i) CHECK(wa[i].bytes == wb[i].bytes);
  }
  fs::remove_all(dir);
}

TEST_CASE("trainer: a batch in micro-batches sums the parts' gradients to the whole batch's") {
  const std::string dir = temp_dir("parts");
  auto run = [&](const std::string& arch, int parts, const std::string& name) {
    Config c = small_config(arch);
    c.train.micro_batches = parts;
    RunOptions o;
    o.quiet = true;
    o.run_dir = dir + "/" + name;
    return train(c, o);
  };
  // Whole batch against 5 parts (no dropout): the same training to float tolerance, not bit for bit.
  const TrainResult whole = run("mlp", 1, "whole"), five = run("mlp", 5, "five");
  REQUIRE(whole.epochs.size() == five.epochs.size());
  for (size_t e = 0; e < whole.epochs.size(); ++e)
    CHECK(five.epochs[e].train_loss == doctest::Approx(whole.epochs[e].train_loss).epsilon(1e-4));
  const auto ww = weights(dir + "/whole"), wf = weights(dir + "/five");
  REQUIRE(ww.size() == wf.size());
  int differ = 0;
  for (size_t i = 0; i < ww.size(); ++i) {
    REQUIRE(ww[i].bytes.size() == wf[i].bytes.size());
    const auto* a = reinterpret_cast<const float*>(ww[i].bytes.data());
    const auto* b = reinterpret_cast<const float*>(wf[i].bytes.data());
    for (size_t k = 0; k < ww[i].bytes.size() / 4; ++k) {
      CHECK(b[k] == doctest::Approx(a[k]).epsilon(1e-3).scale(1));
      differ += a[k] != b[k];
    }
  }
  CHECK(differ > 0);  // the sums are grouped differently, so some bits differ
  // The parts' record in metrics.jsonl: the payload is every parameter and two slots per part.
  const nlohmann::json m = st::test::metrics(dir + "/five").back();
  CHECK(m["micro_batches"] == 5);
  CHECK(m["ranks"] == 1);
  CHECK(m["exchange_payload_bytes"] == 4 * ((64 * 32 + 32) + (32 * 4 + 4) + 2 * 5));
  CHECK(m["exchange_bytes_per_step"] == 0);  // one process sends nothing
  // Parts with dropout, and more parts than the short last batch has samples (512 = 10 × 50 + 12):
  // deterministic, and every sample counted once.
  for (int parts : {3, 50}) {
    CAPTURE(parts);
    const TrainResult a = run("layers", parts, "a" + std::to_string(parts));
    const TrainResult b = run("layers", parts, "b" + std::to_string(parts));
    CHECK(a.epochs.back().train_loss == b.epochs.back().train_loss);
    CHECK(a.final_test_accuracy > 0.5);
    const auto wa = weights(dir + "/a" + std::to_string(parts)), wb = weights(dir + "/b" + std::to_string(parts));
    for (size_t i = 0; i < wa.size(); ++i) CHECK(wa[i].bytes == wb[i].bytes);
    CHECK(a.epochs.back().samples_per_second > 0);
  }
  fs::remove_all(dir);
}

TEST_CASE("trainer: an interrupted and resumed run ends with exactly the same weights") {
  const std::string dir = temp_dir("resume");
  for (std::string arch : {"mlp", "layers"}) {  // "layers" has dropout: its RNG state must resume too
    CAPTURE(arch);
    RunOptions full, part;
    full.quiet = part.quiet = true;
    full.run_dir = dir + "/full_" + arch;
    part.run_dir = dir + "/part_" + arch;
    train(small_config(arch), full);
    part.stop_after_epochs = 1;
    TrainResult first = train(small_config(arch), part);
    CHECK(first.epochs.size() == 1);
    CHECK_FALSE(fs::exists(part.run_dir + "/summary.json"));
    RunOptions cont;
    cont.quiet = true;
    TrainResult rest = resume(part.run_dir, cont);
    CHECK(rest.epochs.size() == 2);
    CHECK(rest.epochs.front().epoch == 2);
    auto wf = weights(full.run_dir), wp = weights(part.run_dir);
    REQUIRE(wf.size() == wp.size());
    for (size_t i = 0; i < wf.size(); ++i) {
      CAPTURE(wf[i].name);
      CHECK(wf[i].name == wp[i].name);
      CHECK(wf[i].bytes == wp[i].bytes);  // bitwise: weights and optimizer state
    }
    // metrics.jsonl of the resumed run: one line per epoch, the same as the uninterrupted one's
    // except for timings.
    std::ifstream mf(full.run_dir + "/metrics.jsonl"), mp(part.run_dir + "/metrics.jsonl");
    std::string lf, lp;
    int n = 0;
    while (std::getline(mf, lf) && std::getline(mp, lp)) {
      auto jf = nlohmann::json::parse(lf), jp = nlohmann::json::parse(lp);
      CHECK(jf["train_loss"] == jp["train_loss"]);
      CHECK(jf["test_accuracy"] == jp["test_accuracy"]);
      ++n;
    }
    CHECK(n == 3);
  }
  fs::remove_all(dir);
}

TEST_CASE("trainer: --init-from starts from a checkpoint's weights; bad checkpoints are clear errors") {
  const std::string dir = temp_dir("init");
  RunOptions a;
  a.quiet = true;
  a.run_dir = dir + "/pre";
  train(small_config(), a);
  // Zero epochs of training are not possible, so check the starting point through evaluation:
  // a run initialized from the trained weights is already accurate after its first epoch at a tiny lr.
  Config c = small_config();
  c.optimizer.lr = 1e-6;
  c.lr_schedule.warmup_epochs = 0;
  c.train.epochs = 1;
  RunOptions b;
  b.quiet = true;
  b.run_dir = dir + "/ft";
  b.init_from = a.run_dir + "/checkpoint.safetensors";
  TrainResult r = train(c, b);
  CHECK(r.final_test_accuracy > 0.9);
  // A checkpoint of another architecture.
  Config other = small_config("layers");
  RunOptions bad;
  bad.quiet = true;
  bad.run_dir = dir + "/bad";
  bad.init_from = a.run_dir + "/checkpoint.safetensors";
  CHECK_THROWS_WITH(train(other, bad), doctest::Contains("checkpoint.safetensors"));
  // Not a run folder.
  CHECK_THROWS_WITH(resume(dir + "/nothing", RunOptions{}), doctest::Contains("not a run folder"));
  fs::remove_all(dir);
}
