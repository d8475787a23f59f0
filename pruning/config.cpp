// pruning/config.cpp — validation of the "pruning" block (schema: docs/pruning.md): the keys every
// method shares and the rules between them; each method's schedule defaults and own checks are in
// its file (pruning/methods/), read through the registry.
#include "pruning/config.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <limits>

#include "core/check.h"
#include "pruning/method.h"

namespace st::pruning {

using nlohmann::json;

namespace {

template <class E>
struct Choice {
  E value;
  const char* text;
};

#define ST_METHOD_CHOICE(id, name) {Method::id, #name},
constexpr Choice<Method> kMethods[] = {ST_PRUNING_METHODS(ST_METHOD_CHOICE)};
#undef ST_METHOD_CHOICE
constexpr Choice<CriterionType> kCriteria[] = {
    {CriterionType::Magnitude, "magnitude"},   {CriterionType::Gradient, "gradient"},
    {CriterionType::Taylor, "taylor"},         {CriterionType::Activation, "activation"},
    {CriterionType::Neighbourhood, "neighbourhood"}, {CriterionType::L1Norm, "l1_norm"},
    {CriterionType::L2Norm, "l2_norm"},        {CriterionType::Fisher, "fisher"},
    {CriterionType::Random, "random"}};
constexpr Choice<GranularityType> kGranularities[] = {
    {GranularityType::Element, "element"}, {GranularityType::Neuron, "neuron"},
    {GranularityType::Filter, "filter"},   {GranularityType::Channel, "channel"},
    {GranularityType::Block, "block"},     {GranularityType::NM, "nm"}};
constexpr Choice<DistributionType> kDistributions[] = {
    {DistributionType::Layerwise, "layerwise"}, {DistributionType::Global, "global"},
    {DistributionType::Uniform, "uniform"},     {DistributionType::Erk, "erk"},
    {DistributionType::Er, "er"}};
constexpr Choice<RewindType> kRewinds[] = {
    {RewindType::None, "none"}, {RewindType::Init, "init"}, {RewindType::Epoch, "epoch"}};

template <class E, size_t N>
const char* choice_text(const Choice<E> (&table)[N], E value) {
  for (const auto& c : table)
    if (c.value == value) return c.text;
  return "?";
}

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out;
}

[[noreturn]] void fail(const std::string& msg) { throw Error(msg); }

// One object of the pruning block: checks its keys once, then reads typed values with defaults.
class Obj {
 public:
  Obj(const json* v, std::string where, const std::vector<std::string>& allowed) : v_(v), path_(std::move(where)) {
    if (!v_) return;
    if (!v_->is_object()) fail(path_ + ": expected an object, got " + excerpt(v_->dump()));
    for (const auto& item : v_->items())
      if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
        fail("unknown key \"" + excerpt(path(item.key())) + "\" (allowed: " + quoted_list(allowed) + ")");
  }
  const json* find(const std::string& k) const {
    if (!v_) return nullptr;
    auto it = v_->find(k);
    return it == v_->end() ? nullptr : &*it;
  }
  bool has(const std::string& k) const { return find(k) != nullptr; }
  std::string path(const std::string& k) const { return path_ + "." + k; }

  int integer(const std::string& k, int def, int lo, int hi = INT_MAX) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_number_integer()) fail(path(k) + ": expected an integer, got " + excerpt(v->dump()));
    const long long x = v->get<long long>();
    if (x < lo || x > hi)
      fail(path(k) + " = " + std::to_string(x) + " is out of range (allowed: " +
           (hi == INT_MAX ? ">= " + std::to_string(lo) : "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]") + ")");
    return static_cast<int>(x);
  }
  double number(const std::string& k, double def, double lo, bool lo_closed, double hi, bool hi_closed) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_number()) fail(path(k) + ": expected a number, got " + excerpt(v->dump()));
    const double x = v->get<double>();
    const bool ok = (lo_closed ? x >= lo : x > lo) && (hi_closed ? x <= hi : x < hi);
    if (!ok) {
      std::string range = std::isinf(hi) ? (lo_closed ? ">= " : "> ") + number_text(lo)
                                         : std::string(lo_closed ? "[" : "(") + number_text(lo) + ", " +
                                               number_text(hi) + (hi_closed ? "]" : ")");
      fail(path(k) + " = " + excerpt(v->dump()) + " is out of range (allowed: " + range + ")");
    }
    return x;
  }
  bool boolean(const std::string& k, bool def) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_boolean()) fail(path(k) + ": expected a boolean, got " + excerpt(v->dump()));
    return v->get<bool>();
  }
  std::string string(const std::string& k, const std::string& def) const {
    const json* v = find(k);
    if (!v) return def;
    if (!v->is_string()) fail(path(k) + ": expected a string, got " + excerpt(v->dump()));
    return v->get<std::string>();
  }
  template <class E, size_t N>
  E choice(const std::string& k, E def, const Choice<E> (&table)[N]) const {
    const json* v = find(k);
    if (!v) return def;
    std::vector<std::string> names;
    for (const auto& c : table) names.push_back(c.text);
    if (!v->is_string()) fail(path(k) + ": expected one of " + quoted_list(names) + ", got " + excerpt(v->dump()));
    const std::string s = v->get<std::string>();
    for (const auto& c : table)
      if (s == c.text) return c.value;
    fail(path(k) + " = \"" + excerpt(s) + "\" is not one of " + quoted_list(names));
  }

 private:
  const json* v_;
  std::string path_;
};

// Reads schedule key `key` (given in `sc`) into `s`: the ranges every method shares, an integer's
// minimum raised where the method says so (PruningMethod::schedule_minimums).
void read_schedule_key(const Obj& sc, const std::string& key, const PruningMethod& method, ScheduleConfig& s) {
  auto at_least = [&](int shared) {
    for (const auto& [k, lo] : method.schedule_minimums())
      if (k == key) return std::max(shared, lo);
    return shared;
  };
  if (key == "epoch") s.epoch = sc.integer(key, 0, at_least(0));
  else if (key == "start_epoch") s.start_epoch = sc.integer(key, 0, at_least(0));
  else if (key == "end_epoch") s.end_epoch = sc.integer(key, 0, at_least(0));
  else if (key == "every") s.every = sc.integer(key, 1, at_least(1));
  else if (key == "rounds") s.rounds = sc.integer(key, 1, at_least(1));
  else if (key == "every_steps") s.every_steps = sc.integer(key, 0, at_least(0));
  else if (key == "initial_sparsity") s.initial_sparsity = sc.number(key, 0.0, 0, true, 1, false);
  else if (key == "drop_fraction") s.drop_fraction = sc.number(key, 0.3, 0, false, 1, false);
  else if (key == "rewind") s.rewind = sc.choice(key, RewindType::None, kRewinds);
  else if (key == "rewind_epoch") s.rewind_epoch = sc.integer(key, 0, at_least(0));
}

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

}  // namespace

const std::vector<std::string> kScheduleKeys = {"epoch", "start_epoch", "end_epoch", "every", "rounds",
                                                "every_steps", "initial_sparsity", "drop_fraction",
                                                "rewind", "rewind_epoch"};

const char* to_string(Method v) { return choice_text(kMethods, v); }
const char* to_string(CriterionType v) { return choice_text(kCriteria, v); }
const char* to_string(GranularityType v) { return choice_text(kGranularities, v); }
const char* to_string(DistributionType v) { return choice_text(kDistributions, v); }
const char* to_string(RewindType v) { return choice_text(kRewinds, v); }

PruningConfig parse_pruning_config(const json& raw, int train_epochs) {
  PruningConfig c;
  if (!raw.is_object()) fail("pruning: expected an object, got " + excerpt(raw.dump()));
  Obj top(&raw, "pruning",
          {"method", "target", "threshold", "criterion", "granularity", "distribution",
           "schedule", "l1", "admm", "finetune", "distill"});
  if (!top.has("method")) fail("missing required key \"pruning.method\"");
  c.method = top.choice("method", Method::OneShot, kMethods);
  const std::string method = std::string("\"") + to_string(c.method) + "\"";
  const std::unique_ptr<PruningMethod> method_rules = make_method(c.method);
  const MethodTraits traits = method_rules->traits();

  // finetune first: it sets the epoch range every other key is checked against.
  {
    Obj ft(top.find("finetune"), "pruning.finetune", {"epochs", "lr_scale"});
    c.finetune.epochs = ft.integer("epochs", 0, 0);
    c.finetune.lr_scale = ft.number("lr_scale", 0.1, 0, false, std::numeric_limits<double>::infinity(), false);
  }
  const int total = train_epochs + c.finetune.epochs;
  const std::string total_text = run_length_text(c, train_epochs);

  // criterion, granularity, distribution
  {
    Obj cr(top.find("criterion"), "pruning.criterion", {"type", "batches"});
    if (top.has("criterion") && traits.no_criterion)
      fail("pruning.criterion is not used by method " + method + " (" + traits.no_criterion + ")");
    c.criterion.type = cr.choice("type", traits.default_criterion, kCriteria);
    c.criterion.batches = cr.integer("batches", 10, 1);

    Obj gr(top.find("granularity"), "pruning.granularity", {"type", "block", "n", "m"});
    c.granularity.type = gr.choice("type", GranularityType::Element, kGranularities);
    if (const json* b = gr.find("block")) {
      if (c.granularity.type != GranularityType::Block) fail("pruning.granularity.block is only used with type \"block\"");
      if (b->is_number_integer()) {
        c.granularity.block = {b->get<int>(), b->get<int>()};
      } else if (b->is_array() && b->size() == 2 && (*b)[0].is_number_integer() && (*b)[1].is_number_integer()) {
        c.granularity.block = {(*b)[0].get<int>(), (*b)[1].get<int>()};
      } else {
        fail("pruning.granularity.block: expected an integer or a [rows, cols] pair, got " + excerpt(b->dump()));
      }
      if (c.granularity.block[0] < 1 || c.granularity.block[1] < 1)
        fail("pruning.granularity.block = " + excerpt(b->dump()) + " is out of range (allowed: sizes >= 1)");
    }
    if ((gr.has("n") || gr.has("m")) && c.granularity.type != GranularityType::NM)
      fail("pruning.granularity." + std::string(gr.has("n") ? "n" : "m") + " is only used with type \"nm\"");
    c.granularity.m = gr.integer("m", 4, 1);
    c.granularity.n = gr.integer("n", 2, 1);
    if (c.granularity.type == GranularityType::NM && c.granularity.n >= c.granularity.m)
      fail("pruning.granularity.n = " + std::to_string(c.granularity.n) + " must be less than pruning.granularity.m = " +
           std::to_string(c.granularity.m));
    if (traits.sparse_from_start && c.granularity.type != GranularityType::Element)
      fail("pruning.granularity.type = \"" + std::string(to_string(c.granularity.type)) + "\": method " + method +
           " works on elements (use \"element\")");
    if (c.granularity.type == GranularityType::NM && c.method != Method::OneShot)
      fail("pruning.granularity.type = \"nm\" sets the sparsity itself (1 - n/m); it works with method \"one_shot\" only");
    if (c.criterion.type == CriterionType::Activation && c.granularity.type != GranularityType::Neuron &&
        c.granularity.type != GranularityType::Filter && c.granularity.type != GranularityType::Element)
      fail("pruning.criterion.type = \"activation\" scores output units: pruning.granularity.type must be \"neuron\", \"filter\" or \"element\"");
    if (c.criterion.type == CriterionType::Neighbourhood && c.granularity.type != GranularityType::Neuron &&
        c.granularity.type != GranularityType::Filter)
      fail("pruning.criterion.type = \"neighbourhood\" scores units: pruning.granularity.type must be \"neuron\" or \"filter\"");

    Obj di(top.find("distribution"), "pruning.distribution", {"type", "keep_dense", "erk_power"});
    c.distribution.type = di.choice("type", traits.sparse_from_start ? DistributionType::Erk : DistributionType::Layerwise, kDistributions);
    if (const json* k = di.find("keep_dense")) {
      if (!k->is_array()) fail("pruning.distribution.keep_dense: expected an array of layer names, got " + excerpt(k->dump()));
      for (size_t i = 0; i < k->size(); ++i) {
        if (!(*k)[i].is_string())
          fail("pruning.distribution.keep_dense[" + std::to_string(i) + "]: expected a layer name, got " + excerpt((*k)[i].dump()));
        c.distribution.keep_dense.push_back((*k)[i].get<std::string>());
      }
    } else if (c.distribution.type == DistributionType::Uniform) {
      c.distribution.keep_dense = {"first", "last"};
    }
    c.distribution.erk_power = di.number("erk_power", 1.0, 0, false, std::numeric_limits<double>::infinity(), false);
    if (c.granularity.type == GranularityType::NM && di.has("type"))
      fail("pruning.distribution.type is not used with pruning.granularity.type \"nm\" (every layer gets 1 - n/m)");
    if ((c.distribution.type == DistributionType::Erk || c.distribution.type == DistributionType::Er) &&
        c.granularity.type != GranularityType::Element)
      fail("pruning.distribution.type = \"" + std::string(to_string(c.distribution.type)) +
           "\" gives per-element densities: pruning.granularity.type must be \"element\"");
  }

  // target / threshold
  {
    c.has_target = top.has("target");
    c.has_threshold = top.has("threshold");
    c.target = top.number("target", 0.0, 0, true, 1, false);
    c.threshold = top.number("threshold", 0.0, 0, true, std::numeric_limits<double>::infinity(), false);
    if (c.has_target && c.has_threshold) fail("pruning.target and pruning.threshold: give one, not both");
    if (c.has_threshold && !traits.takes_threshold)
      fail("pruning.threshold works with methods " + threshold_methods() + "; method " + method + " needs pruning.target");
    if (c.has_threshold && (c.distribution.type == DistributionType::Erk || c.distribution.type == DistributionType::Er))
      fail("pruning.threshold cannot be combined with pruning.distribution.type \"" +
           std::string(to_string(c.distribution.type)) + "\" (a threshold is one cut over all layers)");
    if (c.granularity.type == GranularityType::NM) {
      if (c.has_target || c.has_threshold)
        fail(std::string("pruning.") + (c.has_target ? "target" : "threshold") +
             " is not used with pruning.granularity.type \"nm\" (the sparsity is 1 - n/m)");
    } else if (!c.has_target && !c.has_threshold) {
      fail("missing required key \"pruning.target\" (a fraction in [0, 1)" +
           std::string(traits.takes_threshold ? ", or pruning.threshold)" : ")"));
    }
  }

  // schedule: the method's keys, each as given or else the method's default, then its own checks
  {
    const auto allowed = method_rules->schedule_keys();
    if (const json* s = top.find("schedule")) {
      if (!s->is_object()) fail("pruning.schedule: expected an object, got " + excerpt(s->dump()));
      for (const auto& item : s->items()) {
        if (std::find(allowed.begin(), allowed.end(), item.key()) != allowed.end()) continue;
        if (std::find(kScheduleKeys.begin(), kScheduleKeys.end(), item.key()) != kScheduleKeys.end())
          fail("pruning.schedule." + item.key() + " is not used by method " + method + " (its keys: " +
               (allowed.empty() ? std::string("none") : quoted_list(allowed)) + ")");
        fail("unknown key \"pruning.schedule." + item.key() + "\" (method " + method + " takes " +
             (allowed.empty() ? std::string("none") : quoted_list(allowed)) + ")");
      }
    }
    Obj sc(top.find("schedule"), "pruning.schedule", kScheduleKeys);
    for (const std::string& key : kScheduleKeys) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) continue;
      if (sc.has(key)) read_schedule_key(sc, key, *method_rules, c.schedule);
      else method_rules->default_schedule(key, c, train_epochs);
    }
    if (sc.has("rewind_epoch") && c.schedule.rewind != RewindType::Epoch)
      fail("pruning.schedule.rewind_epoch is only used with pruning.schedule.rewind = \"epoch\"");
    method_rules->check(c, train_epochs);
  }

  // l1, admm, distill
  {
    Obj l1(top.find("l1"), "pruning.l1", {"lambda", "start_epoch", "end_epoch"});
    c.l1.enabled = top.has("l1");
    if (c.l1.enabled && !l1.has("lambda")) fail("missing required key \"pruning.l1.lambda\"");
    c.l1.lambda = l1.number("lambda", 0.0, 0, false, std::numeric_limits<double>::infinity(), false);
    c.l1.start_epoch = l1.integer("start_epoch", 0, 0);
    c.l1.end_epoch = l1.integer("end_epoch", total, 1);
    if (c.l1.enabled && c.l1.end_epoch <= c.l1.start_epoch)
      fail("pruning.l1.end_epoch = " + std::to_string(c.l1.end_epoch) + " must be greater than pruning.l1.start_epoch = " +
           std::to_string(c.l1.start_epoch));
    if (c.l1.end_epoch > total)
      fail("pruning.l1.end_epoch = " + std::to_string(c.l1.end_epoch) + " is after the end of the run (" + total_text + ")");

    Obj ad(top.find("admm"), "pruning.admm", {"rho"});
    if (top.has("admm") && c.method != Method::Admm) fail("pruning.admm is only used with method \"admm\"");
    c.admm.rho = ad.number("rho", 1e-3, 0, false, std::numeric_limits<double>::infinity(), false);

    Obj kd(top.find("distill"), "pruning.distill", {"teacher", "temperature", "alpha"});
    c.distill.enabled = top.has("distill");
    if (c.distill.enabled && !kd.has("teacher")) fail("missing required key \"pruning.distill.teacher\"");
    c.distill.teacher = kd.string("teacher", "");
    if (c.distill.enabled && c.distill.teacher.empty()) fail("pruning.distill.teacher: expected a checkpoint path, got \"\"");
    c.distill.temperature = kd.number("temperature", 4.0, 0, false, std::numeric_limits<double>::infinity(), false);
    c.distill.alpha = kd.number("alpha", 0.9, 0, true, 1, true);
  }
  return c;
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
