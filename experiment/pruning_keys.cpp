// experiment/pruning_keys.cpp — the rows of the "pruning" block (experiment/pruning_keys.h). The
// spellings are the pruning layer's to_string; the method decides which schedule keys apply, their
// defaults and minimums (pruning/methods/*.cpp); rules over several keys are
// pruning::check_pruning_config.
#include "experiment/pruning_keys.h"

#include <algorithm>
#include <memory>

#include "core/check.h"
#include "pruning/method.h"

namespace st::experiment {

using nlohmann::json;

namespace pr = st::pruning;

namespace {

using K = Key<Config>;
using Condition = std::function<bool(const Config&)>;
using Refusal = std::function<std::string(const Config&)>;

template <class E>
Choice<E> spelled(E v) {
  return {v, pr::to_string(v)};
}

#define ST_METHOD_CHOICE(id, name) spelled(pr::Method::id),
const Choice<pr::Method> kMethods[] = {ST_PRUNING_METHODS(ST_METHOD_CHOICE)};
#undef ST_METHOD_CHOICE
using CT = pr::CriterionType;
const Choice<CT> kCriteria[] = {spelled(CT::Magnitude), spelled(CT::Gradient), spelled(CT::Taylor),
                                spelled(CT::Activation), spelled(CT::Neighbourhood), spelled(CT::L1Norm),
                                spelled(CT::L2Norm), spelled(CT::Fisher), spelled(CT::Random)};
using GT = pr::GranularityType;
const Choice<GT> kGranularities[] = {spelled(GT::Element), spelled(GT::Neuron), spelled(GT::Filter),
                                     spelled(GT::Channel), spelled(GT::Block), spelled(GT::NM)};
using DT = pr::DistributionType;
const Choice<DT> kDistributions[] = {spelled(DT::Layerwise), spelled(DT::Global), spelled(DT::Uniform),
                                     spelled(DT::Erk), spelled(DT::Er)};
using RT = pr::RewindType;
const Choice<RT> kRewinds[] = {spelled(RT::None), spelled(RT::Init), spelled(RT::Epoch)};

// Runs `f`, giving the pruning layer's st::Error as the config's ConfigError.
template <class F>
void as_config_error(F f) {
  try {
    f();
  } catch (const Error& e) {
    fail_key(e.what());
  }
}

std::unique_ptr<pr::PruningMethod> method_of(const Config& c) { return pr::make_method(c.pruning->method); }
std::string method_text(const Config& c) { return "\"" + std::string(pr::to_string(c.pruning->method)) + "\""; }

// `k` applies while the pruning block is present and `also` holds (else a given value gets `refusal`).
// Its reference default is what it writes for PruningConfig{} unless `k` names one.
K in_block(K k, Condition also = {}, Refusal refusal = {}, const char* applies_doc = "") {
  k.applies_if = [also](const Config& c) { return c.pruning.has_value() && (!also || also(c)); };
  k.refusal = std::move(refusal);
  k.applies_doc = applies_doc;
  if (k.default_doc.empty()) {
    Config defaults;
    defaults.pruning.emplace();
    k.default_doc = "`" + k.write(defaults).dump() + "`";
  }
  return k;
}

// An optional object of the block: `mark` records that it is present.
K block_key(const char* path, const char* help, std::function<void(Config&)> mark) {
  K k;
  k.path = path;
  k.type = "object";
  k.help = help;
  k.shape = K::Block;
  k.read = [mark](Config& c, const json& v, const std::string& p) {
    if (!v.is_object()) fail_key(p + ": expected an object, got " + describe_value(v));
    if (mark) mark(c);
  };
  k.write = [](const Config&) { return json(); };
  k.default_doc = "absent";
  return k;
}

K pruning_block_key() {
  K k = block_key("pruning", "prune while training (docs/pruning.md); null or absent: dense training", {});
  k.type = "object or null";
  k.default_doc = "null (dense training)";
  k.read = [](Config& c, const json& v, const std::string& p) {
    if (v.is_null()) return;
    if (!v.is_object()) fail_key(p + ": expected an object, got " + describe_value(v));
    c.pruning.emplace();
  };
  return k;
}

// The method, and with it the defaults that depend on it (criterion, distribution).
K method_key() {
  K k = choice_key<Config>("pruning.method", [](auto& c) -> auto& { return c.pruning->method; }, kMethods,
                           "the pruning method (docs/pruning.md, \"Methods\")");
  k.read = [](Config& c, const json& v, const std::string& p) {
    c.pruning->method = read_choice(v, p, kMethods);
    const pr::MethodTraits traits = method_of(c)->traits();
    c.pruning->criterion.type = traits.default_criterion;
    c.pruning->distribution.type = traits.sparse_from_start ? DT::Erk : DT::Layerwise;
  };
  k.default_doc = "required";
  return in_block(required(k));
}

K target_key() {
  K k;
  k.path = "pruning.target";
  k.type = "number in [0, 1)";
  k.help = "the fraction of the weights (groups) to prune; required unless pruning.threshold or granularity \"nm\"";
  k.read = [](Config& c, const json& v, const std::string& p) {
    c.pruning->target = read_number(v, p, {0, true, 1, false});
    c.pruning->has_target = true;
  };
  k.write = [](const Config& c) { return c.pruning->has_target ? json(c.pruning->target) : json(); };
  k.default_doc = "none";
  return in_block(k);
}

K threshold_key() {
  K k;
  k.path = "pruning.threshold";
  k.type = "number >= 0";
  k.help = "one_shot, iterative: prune the groups whose score is below it, instead of a target";
  k.read = [](Config& c, const json& v, const std::string& p) {
    c.pruning->threshold = read_number(v, p, {0, true});
    c.pruning->has_threshold = true;
  };
  k.write = [](const Config& c) { return c.pruning->has_threshold ? json(c.pruning->threshold) : json(); };
  k.default_doc = "none";
  return in_block(k);
}

bool takes_criterion(const Config& c) { return !method_of(c)->traits().no_criterion; }
std::string criterion_refusal(const Config& c) {
  return "pruning.criterion is not used by method " + method_text(c) + " (" + method_of(c)->traits().no_criterion + ")";
}

K block_size_key() {
  K k;
  k.path = "pruning.granularity.block";
  k.type = "integer >= 1 or [rows, cols]";
  k.help = "block: rows x cols of the (out, fan-in) weight matrix";
  k.read = [](Config& c, const json& b, const std::string& p) {
    std::array<int, 2>& block = c.pruning->granularity.block;
    if (b.is_number_integer()) {
      block = {b.get<int>(), b.get<int>()};
    } else if (b.is_array() && b.size() == 2 && b[0].is_number_integer() && b[1].is_number_integer()) {
      block = {b[0].get<int>(), b[1].get<int>()};
    } else {
      fail_key(p + ": expected an integer or a [rows, cols] pair, got " + describe_value(b));
    }
    if (block[0] < 1 || block[1] < 1) fail_key(p + " = " + excerpt(b.dump()) + " is out of range (allowed: sizes >= 1)");
  };
  k.write = [](const Config& c) { return pair_to_json(c.pruning->granularity.block); };
  return in_block(k, [](const Config& c) { return c.pruning->granularity.type == GT::Block; },
                  [](const Config&) { return std::string("pruning.granularity.block is only used with type \"block\""); },
                  "`pruning.granularity.type` = `\"block\"`");
}

template <class Get>
K nm_key(const char* path, Get get, const char* help) {
  const std::string refusal = std::string(path) + " is only used with type \"nm\"";
  return in_block(int_key<Config>(path, get, 1, help), [](const Config& c) { return c.pruning->granularity.type == GT::NM; },
                  [refusal](const Config&) { return refusal; }, "`pruning.granularity.type` = `\"nm\"`");
}

K keep_dense_key() {
  K k;
  k.path = "pruning.distribution.keep_dense";
  k.type = "array of layer names";
  k.help = "layers left dense: names (\"fc1\") or \"first\"/\"last\" (the first/last prunable layer)";
  k.read = [](Config& c, const json& v, const std::string& p) {
    if (!v.is_array()) fail_key(p + ": expected an array of layer names, got " + describe_value(v));
    for (size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_string())
        fail_key(p + "[" + std::to_string(i) + "]: expected a layer name, got " + describe_value(v[i]));
      c.pruning->distribution.keep_dense.push_back(v[i].get<std::string>());
    }
  };
  k.write = [](const Config& c) { return json(c.pruning->distribution.keep_dense); };
  k.fill_default = [](Config& c) {
    if (c.pruning->distribution.type == DT::Uniform) c.pruning->distribution.keep_dense = {"first", "last"};
  };
  k.default_doc = "`[\"first\", \"last\"]` for uniform, else `[]`";
  return in_block(k);
}

// ---------------------------------------------------------------------------------------------
// pruning.schedule: each key applies when the method reads it; its default is the method's.

bool takes_schedule_key(const Config& c, const std::string& key) {
  const auto keys = method_of(c)->schedule_keys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

std::string schedule_refusal(const Config& c, const std::string& key) {
  const auto keys = method_of(c)->schedule_keys();
  if (!takes_schedule_key(c, key))
    return "pruning.schedule." + key + " is not used by method " + method_text(c) + " (its keys: " +
           (keys.empty() ? std::string("none") : quoted_list(keys)) + ")";
  return "pruning.schedule.rewind_epoch is only used with pruning.schedule.rewind = \"epoch\"";
}

// The method's minimum for an integer key where it raises the shared one.
int minimum_for(const Config& c, const std::string& key, int shared) {
  for (const auto& [k, lo] : method_of(c)->schedule_minimums())
    if (k == key) return std::max(shared, lo);
  return shared;
}

K schedule_int_key(const char* key, int pr::ScheduleConfig::*field, int shared_minimum, const char* help) {
  K k;
  k.path = std::string("pruning.schedule.") + key;
  k.type = "integer >= " + std::to_string(shared_minimum) + " (some methods ask more)";
  k.help = help;
  const std::string name = key;
  k.read = [name, field, shared_minimum](Config& c, const json& v, const std::string& p) {
    c.pruning->schedule.*field = read_int_at_least(v, p, minimum_for(c, name, shared_minimum));
  };
  k.write = [field](const Config& c) { return json(c.pruning->schedule.*field); };
  return k;
}

K schedule_number_key(const char* key, double pr::ScheduleConfig::*field, Range range, const char* help) {
  K k;
  k.path = std::string("pruning.schedule.") + key;
  k.type = "number in " + range.text();
  k.help = help;
  k.read = [field, range](Config& c, const json& v, const std::string& p) {
    c.pruning->schedule.*field = read_number(v, p, range);
  };
  k.write = [field](const Config& c) { return json(c.pruning->schedule.*field); };
  return k;
}

// A schedule row: applies when the method reads `key` (and rewind_epoch only with rewind "epoch");
// left out, the method's default_schedule sets it.
K schedule_row(K k) {
  const std::string key = k.path.substr(std::string("pruning.schedule.").size());
  k.fill_default = [key](Config& c) {
    as_config_error([&] { method_of(c)->default_schedule(key, *c.pruning, c.train.epochs); });
  };
  // A default may lie below the minimum a given value must reach: it is not written, and reading
  // the block again resolves it to the same default.
  const auto write = k.write;
  k.write = [write, key](const Config& c) {
    const json v = write(c);
    return v.is_number_integer() && v.get<int>() < minimum_for(c, key, INT_MIN) ? json() : v;
  };
  k.default_doc = "the method's";
  return in_block(
      k,
      [key](const Config& c) {
        return takes_schedule_key(c, key) && (key != "rewind_epoch" || c.pruning->schedule.rewind == RT::Epoch);
      },
      [key](const Config& c) { return schedule_refusal(c, key); }, "the method reads it");
}

// The schedule object: a key the method does not read is refused before any default is resolved
// (a missing required one would otherwise be named first).
K schedule_block_key() {
  K k = block_key("pruning.schedule", "when the method acts; its keys depend on the method", {});
  k.read = [](Config& c, const json& v, const std::string& p) {
    if (!v.is_object()) fail_key(p + ": expected an object, got " + describe_value(v));
    for (const auto& item : v.items()) {
      const bool known = std::find(pr::kScheduleKeys.begin(), pr::kScheduleKeys.end(), item.key()) != pr::kScheduleKeys.end();
      if (known && !takes_schedule_key(c, item.key())) fail_key(schedule_refusal(c, item.key()));
    }
  };
  return in_block(k);
}

void add_schedule_keys(KeyTable<Config>& t) {
  using S = pr::ScheduleConfig;
  t.push_back(schedule_block_key());
  t.push_back(schedule_row(schedule_int_key("epoch", &S::epoch, 0, "one_shot, random: the epoch at whose start it prunes")));
  t.push_back(schedule_row(schedule_int_key("start_epoch", &S::start_epoch, 0, "iterative: first round; gradual, admm: first epoch")));
  t.push_back(schedule_row(schedule_int_key("end_epoch", &S::end_epoch, 0, "gradual: reaches the target; set, rigl: last update; admm: hard prune")));
  t.push_back(schedule_row(schedule_int_key("every", &S::every, 1, "iterative: epochs between rounds; set: between updates; admm: Z/U update")));
  t.push_back(schedule_row(schedule_int_key("rounds", &S::rounds, 1, "iterative: prune-and-retrain rounds")));
  t.push_back(schedule_row(schedule_int_key("every_steps", &S::every_steps, 0, "gradual: prune every so many steps (0 = at epoch starts); rigl: steps between updates")));
  t.push_back(schedule_row(schedule_number_key("initial_sparsity", &S::initial_sparsity, {0, true, 1, false}, "gradual: the sparsity at start_epoch")));
  t.push_back(schedule_row(schedule_number_key("drop_fraction", &S::drop_fraction, {0, false, 1, false}, "set, rigl: the fraction of kept weights dropped per update")));
  t.push_back(schedule_row(choice_key<Config>("pruning.schedule.rewind", [](auto& c) -> auto& { return c.pruning->schedule.rewind; }, kRewinds, "iterative: rewind the kept weights after each round")));
  t.push_back(schedule_row(schedule_int_key("rewind_epoch", &S::rewind_epoch, 0, "iterative, rewind \"epoch\": the epoch whose start is the snapshot")));
}

// ---------------------------------------------------------------------------------------------
// The optional objects l1, admm, distill.

bool l1_on(const Config& c) { return c.pruning->l1.enabled; }
constexpr const char* kL1Given = "`pruning.l1` is given";
constexpr const char* kDistillGiven = "`pruning.distill` is given";
bool distill_on(const Config& c) { return c.pruning->distill.enabled; }

void add_l1_keys(KeyTable<Config>& t) {
  t.push_back(in_block(block_key("pruning.l1", "an L1 penalty on the prunable weights", [](Config& c) { c.pruning->l1.enabled = true; })));
  K lambda = required(number_key<Config>("pruning.l1.lambda", [](auto& c) -> auto& { return c.pruning->l1.lambda; }, {0, false}, "the penalty's weight"));
  lambda.default_doc = "required";
  t.push_back(in_block(lambda, l1_on, {}, kL1Given));
  t.push_back(in_block(int_key<Config>("pruning.l1.start_epoch", [](auto& c) -> auto& { return c.pruning->l1.start_epoch; }, 0, "first epoch with the penalty"), l1_on, {}, kL1Given));
  K end = int_key<Config>("pruning.l1.end_epoch", [](auto& c) -> auto& { return c.pruning->l1.end_epoch; }, 1, "the epoch at whose start the penalty stops");
  end.fill_default = [](Config& c) { c.pruning->l1.end_epoch = pr::total_epochs(*c.pruning, c.train.epochs); };
  end.default_doc = "the run's length";
  t.push_back(in_block(end, l1_on, {}, kL1Given));
}

void add_admm_keys(KeyTable<Config>& t) {
  auto is_admm = [](const Config& c) { return c.pruning->method == pr::Method::Admm; };
  auto refusal = [](const Config&) { return std::string("pruning.admm is only used with method \"admm\""); };
  t.push_back(in_block(block_key("pruning.admm", "admm: its options", {}), is_admm, refusal, "`pruning.method` = `\"admm\"`"));
  t.push_back(in_block(number_key<Config>("pruning.admm.rho", [](auto& c) -> auto& { return c.pruning->admm.rho; }, {0, false}, "the augmented-Lagrangian weight"),
                       is_admm, refusal, "`pruning.method` = `\"admm\"`"));
}

void add_distill_keys(KeyTable<Config>& t) {
  t.push_back(in_block(block_key("pruning.distill", "knowledge distillation from a teacher", [](Config& c) { c.pruning->distill.enabled = true; })));
  K teacher = string_key<Config>("pruning.distill.teacher", [](auto& c) -> auto& { return c.pruning->distill.teacher; }, "the teacher: a checkpoint file or a run folder");
  teacher.read = [](Config& c, const json& v, const std::string& p) {
    c.pruning->distill.teacher = read_string(v, p);
    if (c.pruning->distill.teacher.empty()) fail_key(p + ": expected a checkpoint path, got \"\"");
  };
  teacher.default_doc = "required";
  t.push_back(in_block(required(teacher), distill_on, {}, kDistillGiven));
  t.push_back(in_block(number_key<Config>("pruning.distill.temperature", [](auto& c) -> auto& { return c.pruning->distill.temperature; }, {0, false}, "the softmax temperature"), distill_on, {}, kDistillGiven));
  t.push_back(in_block(number_key<Config>("pruning.distill.alpha", [](auto& c) -> auto& { return c.pruning->distill.alpha; }, {0, true, 1, true}, "the weight of the teacher's loss"), distill_on, {}, kDistillGiven));
}

}  // namespace

json pair_to_json(const std::array<int, 2>& p) { return p[0] == p[1] ? json(p[0]) : json::array({p[0], p[1]}); }

void add_pruning_keys(KeyTable<Config>& t) {
  t.push_back(pruning_block_key());
  t.push_back(method_key());
  t.push_back(in_block(int_key<Config>("pruning.finetune.epochs", [](auto& c) -> auto& { return c.pruning->finetune.epochs; }, 0, "fine-tune epochs after train.epochs")));
  t.push_back(in_block(number_key<Config>("pruning.finetune.lr_scale", [](auto& c) -> auto& { return c.pruning->finetune.lr_scale; }, {0, false}, "the fine-tune learning rate, times optimizer.lr")));
  t.push_back(target_key());
  t.push_back(threshold_key());

  const char* with_criterion = "the method takes a criterion";
  t.push_back(in_block(block_key("pruning.criterion", "how weights are scored", {}), takes_criterion, criterion_refusal, with_criterion));
  t.push_back(in_block(choice_key<Config>("pruning.criterion.type", [](auto& c) -> auto& { return c.pruning->criterion.type; }, kCriteria, "the score (default: the method's)"),
                       takes_criterion, criterion_refusal, with_criterion));
  t.push_back(in_block(int_key<Config>("pruning.criterion.batches", [](auto& c) -> auto& { return c.pruning->criterion.batches; }, 1, "batches for gradient, taylor, activation, fisher"),
                       takes_criterion, criterion_refusal, with_criterion));

  t.push_back(in_block(choice_key<Config>("pruning.granularity.type", [](auto& c) -> auto& { return c.pruning->granularity.type; }, kGranularities, "what is pruned: single weights or groups")));
  t.push_back(block_size_key());
  t.push_back(nm_key("pruning.granularity.n", [](auto& c) -> auto& { return c.pruning->granularity.n; }, "nm: keep n of every m consecutive fan-in weights"));
  t.push_back(nm_key("pruning.granularity.m", [](auto& c) -> auto& { return c.pruning->granularity.m; }, "nm: the group size"));

  t.push_back(in_block(choice_key<Config>("pruning.distribution.type", [](auto& c) -> auto& { return c.pruning->distribution.type; }, kDistributions, "how the target spreads over layers (default: erk for static, set, rigl)"),
                       [](const Config& c) { return c.pruning->granularity.type != GT::NM; },
                       [](const Config&) { return std::string("pruning.distribution.type is not used with pruning.granularity.type \"nm\" (every layer gets 1 - n/m)"); },
                       "`pruning.granularity.type` is not `\"nm\"`"));
  t.push_back(keep_dense_key());
  t.push_back(in_block(number_key<Config>("pruning.distribution.erk_power", [](auto& c) -> auto& { return c.pruning->distribution.erk_power; }, {0, false}, "erk: scale^power in the raw densities (1 = RigL's ERK)")));

  t.push_back(in_block(bool_key<Config>("pruning.fan_in_init", [](auto& c) -> auto& { return c.pruning->fan_in_init; },
                                        "static, set, rigl: initialize each sparse unit by its actual fan-in (docs/pruning.md, \"Sparse from the first step\")"),
                       [](const Config& c) { return method_of(c)->traits().sparse_from_start; },
                       [](const Config& c) { return "pruning.fan_in_init is only used by the sparse-from-start methods (static, set, rigl), not " + method_text(c); },
                       "`pruning.method` is `\"static\"`, `\"set\"` or `\"rigl\"`"));

  add_schedule_keys(t);
  add_l1_keys(t);
  add_admm_keys(t);
  add_distill_keys(t);
}

void check_pruning_rules(const Config& c) {
  if (c.pruning) as_config_error([&] { pr::check_pruning_config(*c.pruning, c.train.epochs); });
}

pruning::PruningConfig parse_pruning_config(const json& raw, int train_epochs) {
  KeyTable<Config> rows;
  add_pruning_keys(rows);
  Config c;
  c.train.epochs = train_epochs;
  parse_keys(rows, {}, json{{"pruning", raw}}, c);
  if (!c.pruning) fail_key("pruning: expected an object, got " + describe_value(raw));
  check_pruning_rules(c);
  return *c.pruning;
}

}  // namespace st::experiment
