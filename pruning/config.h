// pruning/config.h — the typed pruning config (the "pruning" block of an experiment config; its keys
// are rows of the experiment layer's key table, experiment/pruning_keys.cpp) and the rules between
// its keys: check_pruning_config throws st::Error whose message names the full key path
// ("pruning.schedule.end_epoch = 3 must be greater than pruning.schedule.start_epoch = 5").
// Layer-dependent checks (granularity vs layer, N:M vs fan-in, keep_dense names) happen when the
// Pruner is built (pruning/pruner.h). Schema, defaults and examples: docs/pruning.md.
// Tests: tests/pruning/test_config.cpp
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "pruning/method_list.h"

namespace st::pruning {

#define ST_METHOD_ENUM(id, name) id,
enum class Method { ST_PRUNING_METHODS(ST_METHOD_ENUM) };
#undef ST_METHOD_ENUM
enum class CriterionType { Magnitude, Gradient, Taylor, Activation, Neighbourhood, L1Norm, L2Norm,
                           Fisher, Random };
enum class GranularityType { Element, Neuron, Filter, Channel, Block, NM };
enum class DistributionType { Layerwise, Global, Uniform, Erk, Er };
enum class RewindType { None, Init, Epoch };

const char* to_string(Method);
const char* to_string(CriterionType);
const char* to_string(GranularityType);
const char* to_string(DistributionType);
const char* to_string(RewindType);

struct CriterionConfig {
  CriterionType type = CriterionType::Magnitude;  // Random for static/set/rigl by default
  int batches = 10;  // >= 1: batches for gradient, taylor, activation, fisher
};

struct GranularityConfig {
  GranularityType type = GranularityType::Element;
  std::array<int, 2> block{1, 4};  // block: rows x cols of the (out, fan-in) weight matrix
  int n = 2, m = 4;                // nm: keep n of every m consecutive fan-in weights
};

struct DistributionConfig {
  DistributionType type = DistributionType::Layerwise;  // Erk for static/set/rigl by default
  // Layer names ("fc1") or "first"/"last" (first/last prunable layer). Default: ["first", "last"]
  // for uniform, [] otherwise.
  std::vector<std::string> keep_dense;
  double erk_power = 1.0;  // (0, inf): scale^power in the ERK raw densities (1 = RigL's ERK)
};

// All epochs are 0-based epoch indices counted over train.epochs then finetune.epochs: "epoch e"
// means "at the start of epoch e". Steps are optimizer steps since the start of the run.
struct ScheduleConfig {
  int epoch = 0;            // one_shot: when (0 = at initialization; default train.epochs with finetune)
  int start_epoch = 0;      // iterative: first round; gradual/admm/l1: first epoch
  int end_epoch = -1;       // gradual: reaches target here; set/rigl: last update; admm: hard prune
  int rounds = 3;           // iterative: >= 1
  int every = 1;            // iterative: epochs between rounds; set: epochs between updates; admm: Z/U update every
  int every_steps = 0;      // gradual: prune every ΔT steps (0 = at epoch starts); rigl: ΔT (default 100)
  double initial_sparsity = 0.0;  // gradual: s_i in [0, target]
  double drop_fraction = 0.3;     // set/rigl: (0, 1)
  RewindType rewind = RewindType::None;  // iterative
  int rewind_epoch = 0;     // iterative rewind "epoch": snapshot at the start of this epoch
};

struct L1Config {
  bool enabled = false;
  double lambda = 0.0;  // > 0
  int start_epoch = 0;
  int end_epoch = -1;   // -1: until the end
};

struct AdmmConfig {
  double rho = 1e-3;  // > 0
};

struct FinetuneConfig {
  int epochs = 0;          // >= 0
  double lr_scale = 0.1;   // > 0
};

struct DistillConfig {
  bool enabled = false;
  std::string teacher;       // checkpoint file or run folder (required when distill is given)
  double temperature = 4.0;  // > 0
  double alpha = 0.9;        // [0, 1]
};

struct PruningConfig {
  Method method = Method::OneShot;  // REQUIRED
  bool has_target = false;
  double target = 0.0;       // [0, 1): fraction of the weights (groups) to prune
  bool has_threshold = false;
  double threshold = 0.0;    // >= 0: prune groups whose score is below it (one_shot, iterative)
  CriterionConfig criterion;
  GranularityConfig granularity;
  DistributionConfig distribution;
  ScheduleConfig schedule;
  L1Config l1;
  AdmmConfig admm;
  FinetuneConfig finetune;
  DistillConfig distill;
  // static, set, rigl on a sparse start (pruning/pruner.h starts_sparse): initialize each unit by
  // its actual fan-in (its row's nonzeros) rather than the dense layer's (pruning/sparse_pattern.h).
  bool fan_in_init = true;
};

// The rules between keys of a block whose keys were each read and resolved (granularity against
// criterion and distribution, target or threshold, the method's own check(), the L1 epochs).
// train_epochs: the config's train.epochs (epoch keys must fall inside train.epochs +
// finetune.epochs). Throws st::Error naming the key path.
void check_pruning_config(const PruningConfig& c, int train_epochs);

// Total epochs of a run with this pruning block (train + fine-tune).
inline int total_epochs(const PruningConfig& c, int train_epochs) {
  return train_epochs + c.finetune.epochs;
}

// Every pruning.schedule key, in the order their values are resolved (pruning/method.h).
extern const std::vector<std::string> kScheduleKeys;

// For a method's schedule defaults and checks (pruning/methods/*.cpp); each throws st::Error naming
// the key path.
// "missing required key \"pruning.schedule.<key>\" (method \"<name>\"<note>)".
[[noreturn]] void fail_missing_schedule_key(const PruningConfig& c, const char* key, const std::string& note = "");
// schedule.end_epoch must be greater than schedule.start_epoch.
void check_end_after_start(const ScheduleConfig& s);
// schedule.<key> = value must be an epoch of the run (at most its last, 0-based).
void check_within_run(const char* key, int value, const PruningConfig& c, int train_epochs);
// schedule.<key> = value must be at most the run's length (an epoch index one past the last is the end).
void check_at_most_run_end(const char* key, int value, const PruningConfig& c, int train_epochs);
// A number as the errors write it ("3", "0.5").
std::string number_text(double v);
// "train.epochs + pruning.finetune.epochs = <n>".
std::string run_length_text(const PruningConfig& c, int train_epochs);

}  // namespace st::pruning
