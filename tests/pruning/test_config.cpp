// The pruning block's validation: defaults, every method, and bad configs naming the key path. The
// block is read by the config's key table (experiment/pruning_keys.h), hence the link to st_experiment.
#include <doctest/doctest.h>

#include "core/check.h"
#include "experiment/pruning_keys.h"
#include "pruning/config.h"

using namespace st;
using namespace st::pruning;
using st::experiment::parse_pruning_config;
using nlohmann::json;

namespace {
std::string error_of(const json& raw, int epochs = 10) {
  try {
    parse_pruning_config(raw, epochs);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}
void check_error(const char* text, const std::vector<std::string>& parts, int epochs = 10) {
  const std::string e = error_of(json::parse(text), epochs);
  for (const auto& p : parts) CHECK_MESSAGE(e.find(p) != std::string::npos, "expected \"" << p << "\" in: " << e);
}
}  // namespace

TEST_CASE("pruning config: defaults per method") {
  PruningConfig c = parse_pruning_config(json::parse(R"({"method": "one_shot", "target": 0.9})"), 10);
  CHECK(c.method == Method::OneShot);
  CHECK(c.target == 0.9);
  CHECK(c.criterion.type == CriterionType::Magnitude);
  CHECK(c.granularity.type == GranularityType::Element);
  CHECK(c.distribution.type == DistributionType::Layerwise);
  CHECK(c.schedule.epoch == 0);
  CHECK(c.finetune.epochs == 0);
  CHECK_FALSE(c.distill.enabled);

  c = parse_pruning_config(json::parse(R"({"method": "rigl", "target": 0.8})"), 8);
  CHECK(c.distribution.type == DistributionType::Erk);
  CHECK(c.schedule.every_steps == 100);
  CHECK(c.schedule.end_epoch == 6);  // 75% of 8
  c = parse_pruning_config(json::parse(R"({"method": "static", "target": 0.8})"), 8);
  CHECK(c.criterion.type == CriterionType::Random);
  c = parse_pruning_config(json::parse(R"({"method": "one_shot", "target": 0.5, "distribution": {"type": "uniform"}})"), 8);
  CHECK(c.distribution.keep_dense == std::vector<std::string>{"first", "last"});
  c = parse_pruning_config(json::parse(R"({"method": "iterative", "target": 0.875,
      "schedule": {"start_epoch": 2, "rounds": 3, "every": 2, "rewind": "epoch", "rewind_epoch": 1},
      "finetune": {"epochs": 2, "lr_scale": 0.5}})"), 6);
  CHECK(c.schedule.rounds == 3);
  CHECK(c.schedule.rewind == RewindType::Epoch);
  CHECK(c.finetune.lr_scale == 0.5);
  c = parse_pruning_config(json::parse(R"({"method": "one_shot", "granularity": {"type": "nm", "n": 2, "m": 4}})"), 3);
  CHECK(c.granularity.n == 2);
  c = parse_pruning_config(json::parse(R"({"method": "admm", "target": 0.5, "schedule": {"end_epoch": 3},
      "admm": {"rho": 0.01}, "l1": {"lambda": 1e-4}, "distill": {"teacher": "runs/t", "temperature": 2}})"), 5);
  CHECK(c.admm.rho == 0.01);
  CHECK(c.l1.enabled);
  CHECK(c.distill.alpha == 0.9);
}

TEST_CASE("pruning config: bad configs name the key") {
  check_error(R"({"target": 0.5})", {"pruning.method"});
  check_error(R"({"method": "one_shot", "target": 1.0})", {"pruning.target", "[0, 1)"});
  check_error(R"({"method": "one_shot", "target": -0.1})", {"pruning.target"});
  check_error(R"({"method": "prune_it", "target": 0.5})", {"pruning.method", "prune_it"});
  check_error(R"({"method": "one_shot"})", {"missing required key \"pruning.target\""});
  check_error(R"({"method": "gradual", "target": 0.5, "schedule": {"start_epoch": 5, "end_epoch": 3}})",
              {"pruning.schedule.end_epoch", "pruning.schedule.start_epoch"});
  check_error(R"({"method": "gradual", "target": 0.5, "schedule": {"start_epoch": 1, "end_epoch": 30}})",
              {"pruning.schedule.end_epoch", "after the last epoch"});
  check_error(R"({"method": "one_shot", "target": 0.5, "criterion": {"type": "saliency"}})",
              {"pruning.criterion.type", "saliency"});
  check_error(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "row"}})", {"pruning.granularity.type"});
  check_error(R"({"method": "one_shot", "target": 0.5, "schedule": {"ephoc": 1}})", {"pruning.schedule.ephoc"});
  check_error(R"({"method": "gradual", "target": 0.5, "schedule": {"end_epoch": 3, "every": 2}})",
              {"pruning.schedule.every", "not used by method \"gradual\""});
  check_error(R"({"method": "one_shot", "target": 0.5, "extra": 1})", {"unknown key \"pruning.extra\""});
  check_error(R"({"method": "one_shot", "granularity": {"type": "nm", "n": 4, "m": 4}})", {"pruning.granularity.n"});
  check_error(R"({"method": "gradual", "target": 0.5, "granularity": {"type": "nm"}, "schedule": {"end_epoch": 2}})",
              {"pruning.granularity.type", "one_shot"});
  check_error(R"({"method": "one_shot", "target": 0.5, "threshold": 0.1})", {"pruning.target", "pruning.threshold"});
  check_error(R"({"method": "rigl", "threshold": 0.1})", {"pruning.threshold"});
  check_error(R"({"method": "set", "target": 0.5, "granularity": {"type": "filter"}})", {"pruning.granularity.type"});
  check_error(R"({"method": "one_shot", "target": 0.5, "criterion": {"type": "activation"}, "granularity": {"type": "channel"}})",
              {"pruning.criterion.type", "pruning.granularity.type"});
  check_error(R"({"method": "one_shot", "target": 0.5, "distribution": {"type": "erk"}, "granularity": {"type": "neuron"}})",
              {"pruning.distribution.type"});
  check_error(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 12}})", {"pruning.schedule.epoch"});
  CHECK(error_of(json::parse(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 12}, "finetune": {"epochs": 3}})")) == "<no error>");
  check_error(R"({"method": "iterative", "target": 0.5, "schedule": {"start_epoch": 4, "rounds": 4, "every": 2}})",
              {"pruning.schedule.rounds"});
  check_error(R"({"method": "one_shot", "target": 0.5, "finetune": {"lr_scale": 0}})", {"pruning.finetune.lr_scale"});
  check_error(R"({"method": "one_shot", "target": 0.5, "distill": {"alpha": 0.5}})", {"pruning.distill.teacher"});
  check_error(R"({"method": "one_shot", "target": 0.5, "distill": {"teacher": "t", "temperature": 0}})",
              {"pruning.distill.temperature"});
  check_error(R"({"method": "admm", "target": 0.5})", {"pruning.schedule.end_epoch"});
  check_error(R"({"method": "one_shot", "target": 0.5, "admm": {"rho": 1}})", {"pruning.admm"});
  check_error(R"({"method": "one_shot", "target": 0.5, "l1": {}})", {"pruning.l1.lambda"});
  check_error(R"({"method": "rigl", "target": 0.5, "criterion": {"type": "magnitude"}})", {"pruning.criterion"});
  check_error(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "block", "block": [0, 4]}})",
              {"pruning.granularity.block"});
}

TEST_CASE("pruning config: misspelled keys and choices get the key table's did-you-mean") {
  check_error(R"({"method": "one_shot", "targte": 0.5})", {"unknown key \"pruning.targte\"", "did you mean \"target\""});
  check_error(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoc": 1}})", {"did you mean \"epoch\""});
  check_error(R"({"method": "oneshot", "target": 0.5})", {"pruning.method", "did you mean \"one_shot\""});
  check_error(R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "neurons"}})", {"did you mean \"neuron\""});
  check_error(R"({"method": "one_shot", "target": 0.5, "l1": {"lamda": 1e-4}})", {"unknown key \"pruning.l1.lamda\""});
}

TEST_CASE("pruning config: every default is valid on the shortest runs") {
  for (const char* method : {"one_shot", "iterative", "static", "set", "rigl"}) {
    for (int epochs : {1, 2, 3}) {
      CAPTURE(method);
      CAPTURE(epochs);
      json raw = {{"method", method}, {"target", 0.5}};
      CHECK_NOTHROW(parse_pruning_config(raw, epochs));
    }
  }
  // RigL's updates stop at the first step of end_epoch: the run's length is a valid end.
  CHECK(parse_pruning_config(json::parse(R"({"method": "rigl", "target": 0.5})"), 1).schedule.end_epoch == 1);
  CHECK(parse_pruning_config(json::parse(R"({"method": "rigl", "target": 0.5})"), 2).schedule.end_epoch == 2);
  check_error(R"({"method": "rigl", "target": 0.5, "schedule": {"end_epoch": 3}})",
              {"pruning.schedule.end_epoch = 3", "after the end of the run"}, 2);
  const PruningConfig it = parse_pruning_config(json::parse(R"({"method": "iterative", "target": 0.5})"), 2);
  CHECK(it.schedule.start_epoch == 1);
  CHECK(it.schedule.rounds == 1);
}

TEST_CASE("pruning config: a huge value is not echoed whole") {
  json raw = {{"method", "one_shot"}, {"target", std::string(1000000, 'x')}};
  const std::string e = error_of(raw);
  CHECK(e.find("pruning.target") != std::string::npos);
  CHECK(e.find("bytes)") != std::string::npos);
  CHECK(e.size() < 400);
}
