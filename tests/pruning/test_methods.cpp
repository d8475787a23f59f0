// Pruning methods as objects (pruning/method.h): the registry holds a factory for every method and
// its schedule keys agree with the config; over a whole short run each method acts exactly at the
// points of its schedule, and planning a hook changes nothing (a hook that does not act leaves every
// weight, gradient, mask, optimizer state, method state and the Rng as they were). The hook runner
// (pruning/hooks.h) re-decides CSR execution after a hook and does nothing without a pruner.
#include <doctest/doctest.h>

#include <algorithm>

#include "core/check.h"
#include "core/optim.h"
#include "experiment/pruning_keys.h"
#include "pruning/hooks.h"
#include "pruning/pruner.h"
#include "pruning_test_util.h"

using namespace st;
using namespace st::pruning;
using st::experiment::parse_pruning_config;
using namespace st::test;
using nlohmann::json;

namespace {

constexpr int kEpochs = 4;
constexpr int kStepsPerEpoch = 3;

// Every method value the config can spell (pruning::to_string answers "?" past the last).
std::vector<Method> spelled_methods() {
  std::vector<Method> out;
  for (int i = 0; std::string(to_string(static_cast<Method>(i))) != "?"; ++i) out.push_back(static_cast<Method>(i));
  return out;
}

std::string config_error(const json& raw) {
  try {
    parse_pruning_config(raw, kEpochs);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A valid value for every schedule key, all usable together by any method that reads them.
const json kScheduleValues = {{"epoch", 1},         {"start_epoch", 0},      {"end_epoch", 2},
                              {"rounds", 1},        {"every", 1},            {"every_steps", 1},
                              {"initial_sparsity", 0.0}, {"drop_fraction", 0.3}, {"rewind", "epoch"},
                              {"rewind_epoch", 0}};

// Everything a hook may change: weights, gradients, masks, optimizer state, method state, Rng.
std::vector<std::vector<float>> state_of(models::Model& m, Optimizer& opt, Pruner& p) {
  std::vector<std::vector<float>> out;
  for (Parameter* prm : m.parameters()) {
    out.push_back(prm->var.value().to_vector());
    out.push_back(prm->var.has_grad() ? prm->var.grad().to_vector() : std::vector<float>{});
    const auto mask = mask_of(*prm);
    out.emplace_back(mask.begin(), mask.end());
  }
  for (auto& [name, slots] : optimizer_state_by_param(opt))
    for (Tensor* t : slots) out.push_back(t->defined() ? t->to_vector() : std::vector<float>{});
  for (const StateTensor& s : p.state_tensors())
    out.push_back(s.tensor->defined() ? s.tensor->to_vector() : std::vector<float>{});
  for (uint64_t w : p.rng().state()) out.push_back({static_cast<float>(w >> 32), static_cast<float>(w & 0xffffffff)});
  return out;
}

// Runs a fresh run's hooks over kEpochs epochs of kStepsPerEpoch steps; checks that planning each
// hook changes nothing, runs those that act and returns where they acted ("start", "begin 1",
// "step 4", "end 2").
std::vector<std::string> acting_points(const char* pruning_config) {
  auto m = mlp(6, 8, 4);
  OptimizerOptions o;
  o.momentum = 0.9f;
  Optimizer opt(m->parameters(), o);
  Pruner p(parse_pruning_config(json::parse(pruning_config), kEpochs), *m, 5);
  p.set_optimizer(&opt);
  p.set_steps_per_epoch(kStepsPerEpoch);
  std::vector<std::string> acted;
  auto hook = [&](const std::string& where, const std::function<Action()>& plan) {
    const auto before = state_of(*m, opt, p);
    const Action action = plan();
    CHECK_MESSAGE(state_of(*m, opt, p) == before, "planning changed the state at ", where);
    if (!action) return;
    acted.push_back(where);
    action();
  };
  hook("start", [&] { return p.plan_start(); });
  Tensor x = Tensor::from_vector({3, 6}, std::vector<float>{1, -2, 3, 0.5f, -1, 2, 0, 1, -1, 2, 3, -0.5f,
                                                             -3, 2, 1, 1, 0.5f, -2});
  Tensor y = Tensor::from_vector({3}, std::vector<int32_t>{0, 3, 1});
  for (int e = 0; e < kEpochs; ++e) {
    hook("begin " + std::to_string(e), [&] { return p.plan_epoch_begin(e); });
    for (int b = 0; b < kStepsPerEpoch; ++b) {
      const int64_t t = int64_t{e} * kStepsPerEpoch + b;
      opt.zero_grad();
      softmax_cross_entropy(m->forward(Variable(x)), y).backward();
      hook("step " + std::to_string(t), [&] { return p.plan_step(e, t); });
      opt.step(0.05f);
    }
    hook("end " + std::to_string(e), [&] { return p.plan_epoch_end(e); });
  }
  return acted;
}

using Points = std::vector<std::string>;

}  // namespace

TEST_CASE("methods: the registry has a factory for every method; names and schedule keys agree with the config") {
  const std::vector<Method> methods = spelled_methods();
  CHECK(registered_methods() == methods);
  std::vector<std::string> all_keys;
  for (const auto& item : kScheduleValues.items()) all_keys.push_back(item.key());
  for (Method method : methods) {
    const std::string name = to_string(method);
    CAPTURE(name);
    const auto made = make_method(method);
    REQUIRE(made != nullptr);
    // The method's schedule keys are the ones the config accepts for it, all at once (and the config
    // spelling parses back to the same method); each other key is refused as one the method does not use.
    const std::vector<std::string> keys = made->schedule_keys();
    json own = json::object();
    for (const std::string& k : keys) {
      REQUIRE(kScheduleValues.contains(k));
      own[k] = kScheduleValues[k];
    }
    CHECK(config_error({{"method", name}, {"target", 0.5}, {"schedule", own}}) == "");
    CHECK(parse_pruning_config({{"method", name}, {"target", 0.5}, {"schedule", own}}, kEpochs).method == method);
    for (const std::string& k : all_keys) {
      if (std::find(keys.begin(), keys.end(), k) != keys.end()) continue;
      CAPTURE(k);
      CHECK(config_error({{"method", name}, {"target", 0.5}, {"schedule", {{k, kScheduleValues[k]}}}})
                .find("is not used by method") != std::string::npos);
    }
  }
}

TEST_CASE("methods: each acts exactly at its schedule's points; a hook that does not act changes nothing") {
  CHECK(acting_points(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 1}})") == Points{"begin 1"});
  CHECK(acting_points(R"({"method": "one_shot", "target": 0.5, "schedule": {"epoch": 3},
                          "l1": {"lambda": 0.01, "start_epoch": 1, "end_epoch": 2}})") ==
        Points{"step 3", "step 4", "step 5", "begin 3"});
  CHECK(acting_points(R"({"method": "iterative", "target": 0.75, "schedule": {"start_epoch": 1, "rounds": 2,
                          "rewind": "epoch", "rewind_epoch": 0}})") == Points{"begin 0", "begin 1", "begin 2"});
  CHECK(acting_points(R"({"method": "iterative", "target": 0.75, "schedule": {"start_epoch": 2, "rounds": 1,
                          "rewind": "init"}})") == Points{"start", "begin 2"});
  CHECK(acting_points(R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 2}})") ==
        Points{"begin 0", "begin 1", "begin 2"});
  CHECK(acting_points(R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 1, "end_epoch": 3,
                          "every_steps": 2}})") == Points{"step 3", "step 5", "step 7", "begin 3"});
  CHECK(acting_points(R"({"method": "static", "target": 0.8})") == Points{"start"});
  CHECK(acting_points(R"({"method": "set", "target": 0.5, "schedule": {"every": 2, "end_epoch": 3}})") ==
        Points{"start", "end 1"});
  CHECK(acting_points(R"({"method": "rigl", "target": 0.5, "schedule": {"every_steps": 4, "end_epoch": 3}})") ==
        Points{"start", "step 4", "step 8"});
  CHECK(acting_points(R"({"method": "admm", "target": 0.5, "schedule": {"start_epoch": 1, "end_epoch": 3}})") ==
        Points{"begin 1", "step 3", "step 4", "step 5", "end 1", "step 6", "step 7", "step 8", "end 2", "begin 3"});
}

TEST_CASE("hook runner: the switch re-decides after a hook that prunes; without a pruner nothing happens") {
  auto m = mlp(8, 8, 4);
  Optimizer opt(m->parameters(), OptimizerOptions{});
  CsrSwitchOptions o;
  o.threshold = 0.5;
  CsrSwitch csr(o, *m);
  csr.update();
  Pruner p(parse_pruning_config(json::parse(R"({"method": "one_shot", "target": 0.75, "schedule": {"epoch": 1}})"),
                                kEpochs),
           *m, 1);
  p.set_optimizer(&opt);
  HookRunner hooks(&p, csr, *m, opt, Device::cpu);
  CHECK(hooks.start().empty());
  CHECK(hooks.epoch_begin(0).empty());
  CHECK_FALSE(hooks.begin_step(0, 0));
  CHECK(hooks.end_step().empty());
  const auto events = hooks.epoch_begin(1);
  REQUIRE(events.size() == 2);
  CHECK(events[0].layer == "fc1");
  CHECK(events[0].to_csr);
  for (const auto& [layer, mode] : csr.modes()) CHECK(mode == "csr");

  auto d = mlp(8, 8, 4);
  Optimizer dopt(d->parameters(), OptimizerOptions{});
  CsrSwitch dcsr(o, *d);
  dcsr.update();
  HookRunner none(nullptr, dcsr, *d, dopt, Device::cpu);
  CHECK(none.start().empty());
  CHECK(none.epoch_begin(0).empty());
  CHECK_FALSE(none.begin_step(0, 0));
  CHECK(none.end_step().empty());
  CHECK(none.epoch_end(0).empty());
}
