// pruning/config.cpp — the spellings of the pruning enums and the rules between the keys of a typed
// pruning block (schema: docs/pruning.md); each method's schedule defaults and own checks are in its
// file (pruning/methods/), read through the registry.
#include "pruning/config.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "core/check.h"
#include "pruning/method.h"

namespace st::pruning {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& msg) { throw Error(msg); }

// "\"one_shot\" and \"iterative\"": the methods that take pruning.threshold.
std::string threshold_methods() {
  std::vector<std::string> names;
  for (Method m : registered_methods())
    if (make_method(m)->traits().takes_threshold) names.push_back(to_string(m));
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i == 0 ? "\"" : i + 1 == names.size() ? " and \"" : ", \"") + names[i] + "\"";
  return out;
}

std::string method_text(const PruningConfig& c) { return std::string("\"") + to_string(c.method) + "\""; }

void check_units(const PruningConfig& c) {
  const GranularityType g = c.granularity.type;
  if (g == GranularityType::NM && c.granularity.n >= c.granularity.m)
    fail("pruning.granularity.n = " + std::to_string(c.granularity.n) + " must be less than pruning.granularity.m = " +
         std::to_string(c.granularity.m));
  if (make_method(c.method)->traits().sparse_from_start && g != GranularityType::Element)
    fail("pruning.granularity.type = \"" + std::string(to_string(g)) + "\": method " + method_text(c) +
         " works on elements (use \"element\")");
  if (g == GranularityType::NM && c.method != Method::OneShot)
    fail("pruning.granularity.type = \"nm\" sets the sparsity itself (1 - n/m); it works with method \"one_shot\" only");
  if (c.criterion.type == CriterionType::Activation && g != GranularityType::Neuron && g != GranularityType::Filter &&
      g != GranularityType::Element)
    fail("pruning.criterion.type = \"activation\" scores output units: pruning.granularity.type must be \"neuron\", \"filter\" or \"element\"");
  if (c.criterion.type == CriterionType::Neighbourhood && g != GranularityType::Neuron && g != GranularityType::Filter)
    fail("pruning.criterion.type = \"neighbourhood\" scores units: pruning.granularity.type must be \"neuron\" or \"filter\"");
  const DistributionType d = c.distribution.type;
  if ((d == DistributionType::Erk || d == DistributionType::Er) && g != GranularityType::Element)
    fail("pruning.distribution.type = \"" + std::string(to_string(d)) +
         "\" gives per-element densities: pruning.granularity.type must be \"element\"");
}

void check_amount(const PruningConfig& c) {
  if (c.has_target && c.has_threshold) fail("pruning.target and pruning.threshold: give one, not both");
  const bool takes_threshold = make_method(c.method)->traits().takes_threshold;
  if (c.has_threshold && !takes_threshold)
    fail("pruning.threshold works with methods " + threshold_methods() + "; method " + method_text(c) + " needs pruning.target");
  if (c.has_threshold && (c.distribution.type == DistributionType::Erk || c.distribution.type == DistributionType::Er))
    fail("pruning.threshold cannot be combined with pruning.distribution.type \"" +
         std::string(to_string(c.distribution.type)) + "\" (a threshold is one cut over all layers)");
  if (c.granularity.type == GranularityType::NM) {
    if (c.has_target || c.has_threshold)
      fail(std::string("pruning.") + (c.has_target ? "target" : "threshold") +
           " is not used with pruning.granularity.type \"nm\" (the sparsity is 1 - n/m)");
  } else if (!c.has_target && !c.has_threshold) {
    fail("missing required key \"pruning.target\" (a fraction in [0, 1)" +
         std::string(takes_threshold ? ", or pruning.threshold)" : ")"));
  }
}

void check_l1(const PruningConfig& c, int train_epochs) {
  if (!c.l1.enabled) return;
  if (c.l1.end_epoch <= c.l1.start_epoch)
    fail("pruning.l1.end_epoch = " + std::to_string(c.l1.end_epoch) + " must be greater than pruning.l1.start_epoch = " +
         std::to_string(c.l1.start_epoch));
  if (c.l1.end_epoch > total_epochs(c, train_epochs))
    fail("pruning.l1.end_epoch = " + std::to_string(c.l1.end_epoch) + " is after the end of the run (" +
         run_length_text(c, train_epochs) + ")");
}

template <class E, size_t N>
const char* name_of(const char* const (&names)[N], E v) {
  const size_t i = static_cast<size_t>(v);
  return i < N ? names[i] : "?";
}

}  // namespace

const std::vector<std::string> kScheduleKeys = {"epoch", "start_epoch", "end_epoch", "every", "rounds",
                                                "every_steps", "initial_sparsity", "drop_fraction",
                                                "rewind", "rewind_epoch"};

#define ST_METHOD_NAME(id, name) #name,
const char* to_string(Method v) {
  static const char* const names[] = {ST_PRUNING_METHODS(ST_METHOD_NAME)};
  return name_of(names, v);
}
#undef ST_METHOD_NAME
const char* to_string(CriterionType v) {
  static const char* const names[] = {"magnitude", "gradient", "taylor",  "activation", "neighbourhood",
                                      "l1_norm",   "l2_norm",  "fisher", "random"};
  return name_of(names, v);
}
const char* to_string(GranularityType v) {
  static const char* const names[] = {"element", "neuron", "filter", "channel", "block", "nm"};
  return name_of(names, v);
}
const char* to_string(DistributionType v) {
  static const char* const names[] = {"layerwise", "global", "uniform", "erk", "er"};
  return name_of(names, v);
}
const char* to_string(RewindType v) {
  static const char* const names[] = {"none", "init", "epoch"};
  return name_of(names, v);
}

void check_pruning_config(const PruningConfig& c, int train_epochs) {
  check_units(c);
  check_amount(c);
  make_method(c.method)->check(c, train_epochs);
  check_l1(c, train_epochs);
}

std::string number_text(double v) {
  if (std::abs(v) < 1e15 && v == std::floor(v)) return std::to_string(static_cast<long long>(v));
  return json(v).dump();
}

std::string run_length_text(const PruningConfig& c, int train_epochs) {
  return "train.epochs + pruning.finetune.epochs = " + std::to_string(total_epochs(c, train_epochs));
}

void fail_missing_schedule_key(const PruningConfig& c, const char* key, const std::string& note) {
  fail("missing required key \"pruning.schedule." + std::string(key) + "\" (method \"" + to_string(c.method) + "\"" +
       note + ")");
}

void check_end_after_start(const ScheduleConfig& s) {
  if (s.end_epoch <= s.start_epoch)
    fail("pruning.schedule.end_epoch = " + std::to_string(s.end_epoch) +
         " must be greater than pruning.schedule.start_epoch = " + std::to_string(s.start_epoch));
}

void check_within_run(const char* key, int value, const PruningConfig& c, int train_epochs) {
  if (value > total_epochs(c, train_epochs) - 1)
    fail("pruning.schedule." + std::string(key) + " = " + std::to_string(value) + " is after the last epoch (" +
         run_length_text(c, train_epochs) + ", epochs are 0-based)");
}

void check_at_most_run_end(const char* key, int value, const PruningConfig& c, int train_epochs) {
  if (value > total_epochs(c, train_epochs))
    fail("pruning.schedule." + std::string(key) + " = " + std::to_string(value) + " is after the end of the run (" +
         run_length_text(c, train_epochs) + ")");
}

}  // namespace st::pruning
