// experiment/config.h — the typed, validated experiment config (JSON in, structs out, JSON back).
//   load_config:      file + "a.b.c=value" overrides -> Config      (errors start with "<file>: ")
//   parse_config:     raw JSON -> Config; every key checked (unknown keys, types, ranges, choices)
//   apply_override:   edit the raw JSON before validation; the key path must exist in the key table
//   to_json:          Config -> JSON with every applicable key filled in; parse(to_json(c)) == c
//   config_reference: docs/config.md, generated from the key table
// Every key is one row of the key table in experiment/config_keys.cpp (type, default, range, help);
// the defaults are the initializers below. Tests: tests/experiment/test_config.cpp
//
// The settings take the enums of the layers that use them (st::Device, st::OptimizerType,
// models::Arch, data::DatasetKind, ...); nothing else from below is needed to read a Config.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/lr_schedule.h"
#include "core/ops.h"
#include "core/optim.h"
#include "data/dataset.h"
#include "models/builder.h"
#include "pruning/config.h"
#include "pruning/csr_switch.h"

namespace st::experiment {

// A user's mistake in a config file or override. The message names the file, the full key path,
// and what was expected.
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The settings' own types are the lower layers' enums; their config spellings ("fashion_mnist",
// "kaiming_uniform", "maxpool2d", ...) are the choice lists of the key table, and nowhere else.
using data::DatasetKind;
using models::Arch;
using models::Init;
using models::LayerType;

// The config spelling of each choice.
const char* to_string(Device);
const char* to_string(DenseBackend);
const char* to_string(SparseImpl);
const char* to_string(DatasetKind);
const char* to_string(Arch);
const char* to_string(Init);
const char* to_string(OptimizerType);
const char* to_string(LrScheduleType);
const char* to_string(LayerType);

// For command-line flags that take one of these values (--device, --backend, --dataset): the config
// spellings in the key table's order, and the value a spelling names. choice_of throws ConfigError
// ("<what> = \"x\" is not one of ...", with a did-you-mean). Defined for Device, DenseBackend,
// DatasetKind and Arch.
template <class E>
std::vector<std::string> choice_names();
template <class E>
E choice_of(const std::string& text, const std::string& what);

// data.synthetic — only allowed (and only written back) when data.dataset == "synthetic".
struct SyntheticConfig {
  int train = 2048;   // > 0 samples
  int test = 512;     // > 0 samples
  int classes = 10;   // >= 2
  int channels = 1;   // > 0
  int height = 28;    // > 0
  int width = 28;     // > 0
};

struct DataConfig {
  DatasetKind dataset = DatasetKind::mnist;  // REQUIRED
  std::string dir;                   // "datasets/mnist" | "datasets/fashion-mnist" | "" (synthetic)
  int validation = 0;                // >= 0, held out of train: 5000 (mnist, fashion), 0 (synthetic);
                                     // must leave at least one training sample
  bool normalize = true;
  bool shuffle = true;               // false: every epoch reads the training set in file order
  SyntheticConfig synthetic;
};

// One entry of model.layers (arch "layers"). A tagged struct: `type` says which fields apply.
//   linear    out_features (> 0, required), bias (true)
//   conv2d    out_channels (> 0, required), kernel (> 0, required), stride (1), padding (0), bias (true)
//   maxpool2d kernel (> 0, required), stride (= kernel), padding (0, at most kernel/2)
//   avgpool2d as maxpool2d
//   dropout   p in [0, 1) (required)
//   relu, flatten: no fields
// Every type also takes an optional `name` ([A-Za-z0-9_-]+, unique within the model).
// kernel/stride/padding are an int or an [h, w] pair; stored as {h, w}.
struct LayerSpec {
  LayerType type = LayerType::relu;
  std::string name;                   // "" = not given (the builder names it)
  int out_features = 0;               // linear
  int out_channels = 0;               // conv2d
  std::array<int, 2> kernel{0, 0};    // conv2d, pools
  std::array<int, 2> stride{1, 1};    // conv2d, pools
  std::array<int, 2> padding{0, 0};   // conv2d, pools
  bool bias = true;                   // linear, conv2d
  double p = 0.0;                     // dropout
};

struct ModelConfig {
  Arch arch = Arch::mlp;          // REQUIRED
  std::vector<int> hidden;        // mlp only, required there (may be empty: softmax regression); each > 0
  Init init = Init::pytorch;
  double dropout = 0.0;           // [0, 1)
  std::vector<LayerSpec> layers;  // arch "layers" only, required there, non-empty
};

struct TrainConfig {
  int epochs = 10;            // >= 1
  int batch_size = 64;        // >= 1
  int eval_batch_size = 1000; // >= 1
  // >= 0, <= batch_size. Each batch is split into this many parts (micro-batches) whose gradients
  // are summed as one left fold in part order (distributed/communicator.h ordered_sum); the ranks of
  // `mpirun -np N` each compute a contiguous run of parts, so N must divide it. 0 = one part per
  // rank (a resume on another number of ranks then sums differently; a number keeps the weights
  // independent of the rank count).
  int micro_batches = 0;
};

// All keys are accepted for every type (a sweep may switch the type by override); each optimizer
// reads the ones it uses.
struct OptimizerConfig {
  OptimizerType type = OptimizerType::sgd;
  double lr = 0.01;          // > 0
  double momentum = 0.9;     // [0, 1)              sgd
  double dampening = 0.0;    // [0, 1)              sgd
  bool nesterov = false;     // needs momentum > 0 and dampening == 0 (as PyTorch)
  double weight_decay = 0.0; // >= 0
  double beta1 = 0.9;        // [0, 1)              adam, adamw
  double beta2 = 0.999;      // [0, 1)              adam, adamw
  double eps = 1e-8;         // > 0                 adam, adamw
};

struct LrScheduleConfig {
  LrScheduleType type = LrScheduleType::constant;
  int warmup_epochs = 0;  // >= 0 and < train.epochs
  int step_size = 10;     // >= 1                   step
  double gamma = 0.1;     // (0, 1]                 step
  double min_lr = 0.0;    // >= 0                   cosine
};

struct OutputConfig {
  std::string dir = "runs";
  int checkpoint_every = 1;  // >= 0 epochs; 0 = only at the end
};

// sparse — CSR execution of pruned layers (pruning/csr_switch.h).
//   enabled        true: a prunable layer executes in CSR once its sparsity reaches the threshold
//   threshold      on device "cpu": a number in [0, 1], or "auto": time dense and CSR on the
//                  layer's shapes once per sparsity level and take the faster (fast, but the choice
//                  may differ from run to run, so bitwise run-to-run reproducibility needs a number)
//   threshold_cuda the same on device "cuda" (defaults: pruning/csr_switch.h)
//   impl           the CSR products on device "cuda": "native" (our kernels, cuda/sparse.h) or
//                  "cusparse" (NVIDIA cuSPARSE; a real GPU only). Unused on the cpu.
// These are execution settings (results match masked dense: docs/architecture.md invariant 2), so a sweep
// ignores them when it matches a run folder to its point.
struct SparseConfig {
  bool enabled = true;
  double threshold = pruning::kCsrThresholdCpu;
  bool auto_threshold = false;
  double threshold_cuda = pruning::kCsrThresholdCuda;
  bool auto_threshold_cuda = false;
  SparseImpl impl = SparseImpl::native;
};

struct Config {
  std::string name;                  // default: the config file's stem ("run" when there is no file)
  std::uint64_t seed = 1;            // >= 0
  int threads = 0;                   // >= 0, 0 = all cores
  Device device = Device::cpu;        // "cuda": the CUDA backend (docs/cuda.md); checked at start-up
  DenseBackend backend = DenseBackend::onednn;  // the dense cpu path
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  OptimizerConfig optimizer;
  LrScheduleConfig lr_schedule;
  OutputConfig output;
  SparseConfig sparse;
  // Empty when absent (or null): dense training. Otherwise the typed, resolved block (schema:
  // docs/pruning.md), read once by parse_config against train.epochs; its defaults depend on the
  // epoch count, so a config whose train.epochs changes is parsed again, not edited.
  std::optional<pruning::PruningConfig> pruning;
};

// Reads `path` (JSON), applies the overrides in order, then validates. Every error message starts
// with "<path>: ".
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Validates `raw`. `source_name` prefixes every error ("" = no prefix) and gives the default name
// (its file stem).
Config parse_config(const nlohmann::json& raw, const std::string& source_name = "");

// "a.b.c=value": sets raw[a][b][c] (creating missing objects). The value is JSON if it parses
// (1e-3, true, [300,100], "\"quoted\""), otherwise the literal string. Array elements of
// model.layers are addressed by index ("model.layers.2.kernel=5" or "model.layers[2].kernel=5") and
// must exist. Throws ConfigError (unknown path, no '=').
void apply_override(nlohmann::json& raw, const std::string& assignment);

// The resolved config with every applicable key (defaults filled). Keys that do not apply to the
// chosen arch/dataset (hidden, layers, data.synthetic) and an absent pruning block are left out; the
// pruning block is written resolved (every key its method reads, defaults filled).
nlohmann::json to_json(const Config&);

// The config reference (Markdown): every key with its type, default, condition and meaning.
std::string config_reference();

// One line for logs: "mnist_mlp: mlp[300,100] on mnist | sgd lr=0.01 ... | 10 epochs x 64 | seed 1 | cpu/onednn".
std::string describe(const Config&);

// Two configs are equal when they serialize to the same JSON.
bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

}  // namespace st::experiment
