// experiment/config_keys.cpp — the config's key table: one row per key (path, type, default, range or
// choices, help, when it applies) and the cross-key rules. parse_config, to_json, apply_override and
// config_reference (docs/config.md) all read these rows; a new key is one row here plus its use. The
// pruning block's rows are in experiment/pruning_keys.cpp.
// Defaults are the initializers of the structs in experiment/config.h, except where a row says
// otherwise (fill_default: a default that depends on an earlier key).
#include "experiment/config.h"
#include "experiment/key_table.h"
#include "experiment/pruning_keys.h"

#include <cctype>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/check.h"

namespace st::experiment {

using nlohmann::json;

namespace {

constexpr Choice<Device> kDevices[] = {{Device::cpu, "cpu"}, {Device::cuda, "cuda"}};
constexpr Choice<DenseBackend> kBackends[] = {{DenseBackend::onednn, "onednn"}, {DenseBackend::native, "native"}};
constexpr Choice<SparseImpl> kSparseImpls[] = {{SparseImpl::native, "native"},
                                               {SparseImpl::cusparse, "cusparse"}};
constexpr Choice<DatasetKind> kDatasets[] = {{DatasetKind::mnist, "mnist"},
                                             {DatasetKind::fashion_mnist, "fashion_mnist"},
                                             {DatasetKind::synthetic, "synthetic"}};
constexpr Choice<Arch> kArchs[] = {{Arch::mlp, "mlp"},
                                   {Arch::lenet300, "lenet300"},
                                   {Arch::lenet5, "lenet5"},
                                   {Arch::simplecnn, "simplecnn"},
                                   {Arch::layers, "layers"}};
constexpr Choice<Init> kInits[] = {{Init::kaiming_uniform, "kaiming_uniform"},
                                   {Init::kaiming_normal, "kaiming_normal"},
                                   {Init::glorot_uniform, "glorot_uniform"},
                                   {Init::glorot_normal, "glorot_normal"},
                                   {Init::pytorch, "pytorch"}};
constexpr Choice<OptimizerType> kOptimizers[] = {{OptimizerType::sgd, "sgd"},
                                                 {OptimizerType::adam, "adam"},
                                                 {OptimizerType::adamw, "adamw"}};
constexpr Choice<LrScheduleType> kSchedules[] = {{LrScheduleType::constant, "constant"},
                                                 {LrScheduleType::step, "step"},
                                                 {LrScheduleType::cosine, "cosine"}};
constexpr Choice<LayerType> kLayerTypes[] = {{LayerType::linear, "linear"},
                                             {LayerType::conv2d, "conv2d"},
                                             {LayerType::maxpool2d, "maxpool2d"},
                                             {LayerType::avgpool2d, "avgpool2d"},
                                             {LayerType::relu, "relu"},
                                             {LayerType::dropout, "dropout"},
                                             {LayerType::flatten, "flatten"}};

// The table that spells each enum.
constexpr const auto& table_for(Device) { return kDevices; }
constexpr const auto& table_for(DenseBackend) { return kBackends; }
constexpr const auto& table_for(SparseImpl) { return kSparseImpls; }
constexpr const auto& table_for(DatasetKind) { return kDatasets; }
constexpr const auto& table_for(Arch) { return kArchs; }
constexpr const auto& table_for(Init) { return kInits; }
constexpr const auto& table_for(OptimizerType) { return kOptimizers; }
constexpr const auto& table_for(LrScheduleType) { return kSchedules; }
constexpr const auto& table_for(LayerType) { return kLayerTypes; }

}  // namespace

const char* to_string(Device v) { return choice_text(table_for(v), v); }
const char* to_string(DenseBackend v) { return choice_text(table_for(v), v); }
const char* to_string(SparseImpl v) { return choice_text(table_for(v), v); }
const char* to_string(DatasetKind v) { return choice_text(table_for(v), v); }
const char* to_string(Arch v) { return choice_text(table_for(v), v); }
const char* to_string(Init v) { return choice_text(table_for(v), v); }
const char* to_string(OptimizerType v) { return choice_text(table_for(v), v); }
const char* to_string(LrScheduleType v) { return choice_text(table_for(v), v); }
const char* to_string(LayerType v) { return choice_text(table_for(v), v); }

template <class E>
std::vector<std::string> choice_names() {
  return choice_names(table_for(E{}));
}

template <class E>
E choice_of(const std::string& text, const std::string& what) {
  return read_choice(json(text), what, table_for(E{}));
}

template std::vector<std::string> choice_names<Device>();
template std::vector<std::string> choice_names<DenseBackend>();
template std::vector<std::string> choice_names<DatasetKind>();
template std::vector<std::string> choice_names<Arch>();
template Device choice_of<Device>(const std::string&, const std::string&);
template DenseBackend choice_of<DenseBackend>(const std::string&, const std::string&);
template DatasetKind choice_of<DatasetKind>(const std::string&, const std::string&);
template Arch choice_of<Arch>(const std::string&, const std::string&);

namespace {

const std::vector<std::string> kLayerKeys = {"type",   "name",    "out_features", "out_channels",
                                             "kernel", "stride",  "padding",      "bias",
                                             "p"};

// Which layer keys each type takes (besides "type" and "name").
std::vector<std::string> layer_keys_for(LayerType t) {
  switch (t) {
    case LayerType::linear: return {"type", "name", "out_features", "bias"};
    case LayerType::conv2d: return {"type", "name", "out_channels", "kernel", "stride", "padding", "bias"};
    case LayerType::maxpool2d:
    case LayerType::avgpool2d: return {"type", "name", "kernel", "stride", "padding"};
    case LayerType::dropout: return {"type", "name", "p"};
    case LayerType::relu:
    case LayerType::flatten: return {"type", "name"};
  }
  return {};
}

bool valid_layer_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

LayerSpec parse_layer(const json& v, const std::string& path) {
  if (!v.is_object()) fail_key(path + ": expected a layer object, got " + describe_value(v));
  LayerSpec layer;
  auto type_it = v.find("type");
  if (type_it == v.end()) {
    // A misspelled "type" reads better as an unknown key than as a missing one.
    for (const auto& item : v.items())
      if (std::find(kLayerKeys.begin(), kLayerKeys.end(), item.key()) == kLayerKeys.end())
        fail_key("unknown key \"" + excerpt(path + "." + item.key()) + "\"" + did_you_mean(item.key(), kLayerKeys));
    fail_key("missing required key \"" + path + ".type\"");
  }
  layer.type = read_choice(*type_it, path + ".type", kLayerTypes);
  const auto allowed = layer_keys_for(layer.type);
  for (const auto& item : v.items()) {
    const std::string& k = item.key();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    if (std::find(kLayerKeys.begin(), kLayerKeys.end(), k) != kLayerKeys.end())
      fail_key(path + "." + k + " is not used by layer type \"" + to_string(layer.type) +
               "\" (its keys: " + quoted_list(allowed) + ")");
    fail_key("unknown key \"" + excerpt(path + "." + k) + "\"" + did_you_mean(k, allowed));
  }
  auto key = [&](const char* k) { return path + "." + k; };
  auto req = [&](const char* k) -> const json& {
    auto it = v.find(k);
    if (it == v.end())
      fail_key("missing required key \"" + key(k) + "\" (layer type \"" + to_string(layer.type) + "\")");
    return *it;
  };
  if (v.contains("name")) {
    layer.name = read_string(v["name"], key("name"));
    if (!valid_layer_name(layer.name))
      fail_key(key("name") + " = \"" + excerpt(layer.name) + "\" is not a valid name (allowed: letters, digits, '_', '-')");
  }
  switch (layer.type) {
    case LayerType::linear:
      layer.out_features = read_int_at_least(req("out_features"), key("out_features"), 1);
      if (v.contains("bias")) layer.bias = read_bool(v["bias"], key("bias"));
      break;
    case LayerType::conv2d:
      layer.out_channels = read_int_at_least(req("out_channels"), key("out_channels"), 1);
      layer.kernel = read_pair(req("kernel"), key("kernel"), 1);
      if (v.contains("stride")) layer.stride = read_pair(v["stride"], key("stride"), 1);
      if (v.contains("padding")) layer.padding = read_pair(v["padding"], key("padding"), 0);
      if (v.contains("bias")) layer.bias = read_bool(v["bias"], key("bias"));
      break;
    case LayerType::maxpool2d:
    case LayerType::avgpool2d:
      layer.kernel = read_pair(req("kernel"), key("kernel"), 1);
      layer.stride = v.contains("stride") ? read_pair(v["stride"], key("stride"), 1) : layer.kernel;
      if (v.contains("padding")) layer.padding = read_pair(v["padding"], key("padding"), 0);
      // PyTorch's rule: a pool window must always overlap the unpadded input.
      for (int d = 0; d < 2; ++d)
        if (layer.padding[d] > layer.kernel[d] / 2)
          fail_key(key("padding") + " = " + v["padding"].dump() + " is out of range (allowed: at most half the kernel, " +
                   std::to_string(layer.kernel[d] / 2) + ")");
      break;
    case LayerType::dropout:
      layer.p = read_number(req("p"), key("p"), {0, true, 1, false});
      break;
    case LayerType::relu:
    case LayerType::flatten: break;
  }
  return layer;
}

json layer_to_json(const LayerSpec& l) {
  json j = {{"type", to_string(l.type)}};
  if (!l.name.empty()) j["name"] = l.name;
  switch (l.type) {
    case LayerType::linear:
      j["out_features"] = l.out_features;
      j["bias"] = l.bias;
      break;
    case LayerType::conv2d:
      j["out_channels"] = l.out_channels;
      j["kernel"] = pair_to_json(l.kernel);
      j["stride"] = pair_to_json(l.stride);
      j["padding"] = pair_to_json(l.padding);
      j["bias"] = l.bias;
      break;
    case LayerType::maxpool2d:
    case LayerType::avgpool2d:
      j["kernel"] = pair_to_json(l.kernel);
      j["stride"] = pair_to_json(l.stride);
      j["padding"] = pair_to_json(l.padding);
      break;
    case LayerType::dropout: j["p"] = l.p; break;
    case LayerType::relu:
    case LayerType::flatten: break;
  }
  return j;
}


constexpr int kMnistTrainImages = 60000;  // both MNIST and Fashion-MNIST
constexpr double kInf = std::numeric_limits<double>::infinity();

std::string default_name(const std::string& source_name) {
  std::string stem = std::filesystem::path(source_name).stem().string();
  return stem.empty() ? "run" : stem;
}

using K = Key<Config>;

K name_key() {
  K k = string_key<Config>("name", [](auto& c) -> auto& { return c.name; },
                           "the run's name (non-empty, no '/'); the run folder is output.dir/name");
  k.read = [](Config& c, const json& v, const std::string& p) {
    c.name = read_string(v, p);
    if (c.name.empty() || c.name.find('/') != std::string::npos)
      fail_key("name = \"" + excerpt(c.name) + "\" is not a valid run name (must be non-empty, without '/')");
  };
  k.default_doc = "the config file's stem";
  return k;
}

K seed_key() {
  K k;
  k.path = "seed";
  k.type = "integer >= 0";
  k.help = "seeds the initialization, the data order, dropout and pruning";
  // A JSON parser gives non-negative integers as unsigned, but JSON built in C++ ({"seed", 5})
  // holds them signed: accept either when the value is >= 0.
  k.read = [](Config& c, const json& v, const std::string& p) {
    if (!v.is_number_integer()) fail_key(p + ": expected an integer, got " + describe_value(v));
    if (!v.is_number_unsigned() && v.get<std::int64_t>() < 0) fail_key(p + " = " + v.dump() + " is out of range (allowed: >= 0)");
    c.seed = v.is_number_unsigned() ? v.get<std::uint64_t>() : static_cast<std::uint64_t>(v.get<std::int64_t>());
  };
  k.write = [](const Config& c) { return json(c.seed); };
  return k;
}

K hidden_key() {
  K k;
  k.path = "model.hidden";
  k.type = "array of integers >= 1";
  k.help = "the hidden layer widths (may be empty: softmax regression)";
  k.read = [](Config& c, const json& h, const std::string& p) {
    if (!h.is_array()) fail_key(p + ": expected an array of integers, got " + describe_value(h));
    for (size_t i = 0; i < h.size(); ++i)
      c.model.hidden.push_back(read_int_at_least(h[i], p + "[" + std::to_string(i) + "]", 1));
  };
  k.write = [](const Config& c) { return json(c.model.hidden); };
  return when(required(k), "model.arch", "mlp");
}

K layers_key() {
  K k;
  k.path = "model.layers";
  k.type = "array of layer objects";
  k.help = "the network, layer by layer (layer types and their keys: LayerSpec in experiment/config.h)";
  k.read = [](Config& c, const json& layers, const std::string& p) {
    if (!layers.is_array() || layers.empty())
      fail_key(p + ": expected a non-empty array of layer objects, got " + describe_value(layers));
    std::set<std::string> names;
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string path = p + "[" + std::to_string(i) + "]";
      c.model.layers.push_back(parse_layer(layers[i], path));
      const std::string& name = c.model.layers.back().name;
      if (!name.empty() && !names.insert(name).second)
        fail_key(path + ".name = \"" + name + "\" is already used by an earlier layer (names must be unique)");
    }
  };
  k.write = [](const Config& c) {
    json out = json::array();
    for (const auto& l : c.model.layers) out.push_back(layer_to_json(l));
    return out;
  };
  k.shape = K::ObjectArray;
  k.element_keys = kLayerKeys;
  return when(required(k), "model.arch", "layers");
}

// A number in [0, 1] or "auto" (time dense and CSR per layer).
template <class GetValue, class GetAuto>
K threshold_key(const char* path, GetValue value, GetAuto automatic, const char* help) {
  K k;
  k.path = path;
  k.type = "number in [0, 1] or \"auto\"";
  k.help = help;
  k.read = [value, automatic](Config& c, const json& t, const std::string& p) {
    if (t.is_string()) {
      if (t.get<std::string>() != "auto")
        fail_key(p + " = " + excerpt(t.dump()) + " is not allowed (expected a number in [0, 1] or \"auto\")");
      automatic(c) = true;
    } else {
      value(c) = read_number(t, p, {0, true, 1, true});
    }
  };
  k.write = [value, automatic](const Config& c) { return automatic(c) ? json("auto") : json(value(c)); };
  return k;
}

const KeyTable<Config>& config_keys() {
  static const KeyTable<Config> table = [] {
    KeyTable<Config> t;
    auto add = [&](K k) { t.push_back(std::move(k)); };
    add(name_key());
    add(seed_key());
    add(int_key<Config>("threads", [](auto& c) -> auto& { return c.threads; }, 0, "OpenMP threads; 0 = all cores"));
    add(choice_key<Config>("device", [](auto& c) -> auto& { return c.device; }, kDevices, "where the model trains (docs/cuda.md)"));
    add(choice_key<Config>("backend", [](auto& c) -> auto& { return c.backend; }, kBackends, "the dense CPU path"));

    add(required(choice_key<Config>("data.dataset", [](auto& c) -> auto& { return c.data.dataset; }, kDatasets, "the dataset")));
    K dir = string_key<Config>("data.dir", [](auto& c) -> auto& { return c.data.dir; }, "the folder of the IDX files (raw or .gz)");
    dir.fill_default = [](Config& c) { c.data.dir = data::default_dir(c.data.dataset); };
    dir.default_doc = "`\"" + std::string(data::default_dir(DatasetKind::mnist)) + "\"`, `\"" +
                      data::default_dir(DatasetKind::fashion_mnist) + "\"`, `\"\"` (synthetic)";
    add(dir);
    K validation = int_key<Config>("data.validation", [](auto& c) -> auto& { return c.data.validation; }, 0,
                                   "samples held out of the training set for validation");
    validation.fill_default = [](Config& c) { c.data.validation = c.data.dataset == DatasetKind::synthetic ? 0 : 5000; };
    validation.default_doc = "`5000` (mnist, fashion_mnist), `0` (synthetic)";
    add(validation);
    add(bool_key<Config>("data.normalize", [](auto& c) -> auto& { return c.data.normalize; }, "standardize per channel with the training split's statistics"));
    add(bool_key<Config>("data.shuffle", [](auto& c) -> auto& { return c.data.shuffle; }, "shuffle the training set each epoch; false keeps the file order (debugging, comparing with other frameworks)"));
    const char* syn = "synthetic";
    add(when(int_key<Config>("data.synthetic.train", [](auto& c) -> auto& { return c.data.synthetic.train; }, 1, "training samples"), "data.dataset", syn));
    add(when(int_key<Config>("data.synthetic.test", [](auto& c) -> auto& { return c.data.synthetic.test; }, 1, "test samples"), "data.dataset", syn));
    add(when(int_key<Config>("data.synthetic.classes", [](auto& c) -> auto& { return c.data.synthetic.classes; }, 2, "classes"), "data.dataset", syn));
    add(when(int_key<Config>("data.synthetic.channels", [](auto& c) -> auto& { return c.data.synthetic.channels; }, 1, "image channels"), "data.dataset", syn));
    add(when(int_key<Config>("data.synthetic.height", [](auto& c) -> auto& { return c.data.synthetic.height; }, 1, "image height"), "data.dataset", syn));
    add(when(int_key<Config>("data.synthetic.width", [](auto& c) -> auto& { return c.data.synthetic.width; }, 1, "image width"), "data.dataset", syn));

    add(required(choice_key<Config>("model.arch", [](auto& c) -> auto& { return c.model.arch; }, kArchs, "a named network, or \"layers\" for model.layers")));
    add(hidden_key());
    add(choice_key<Config>("model.init", [](auto& c) -> auto& { return c.model.init; }, kInits, "weight initialization"));
    add(number_key<Config>("model.dropout", [](auto& c) -> auto& { return c.model.dropout; }, {0, true, 1, false}, "dropout before the last linear layer of a named network"));
    add(layers_key());

    add(int_key<Config>("train.epochs", [](auto& c) -> auto& { return c.train.epochs; }, 1, "training epochs (fine-tune epochs come on top)"));
    add(int_key<Config>("train.batch_size", [](auto& c) -> auto& { return c.train.batch_size; }, 1, "training batch size"));
    add(int_key<Config>("train.micro_batches", [](auto& c) -> auto& { return c.train.micro_batches; }, 0,
                        "parts each batch's gradient is computed in and summed in a fixed order; 0 = one per rank "
                        "(`mpirun -np N`). Runs with the same value give the same weights bit for bit on any "
                        "number of ranks that divides it"));
    add(int_key<Config>("train.eval_batch_size", [](auto& c) -> auto& { return c.train.eval_batch_size; }, 1, "evaluation batch size"));

    add(choice_key<Config>("optimizer.type", [](auto& c) -> auto& { return c.optimizer.type; }, kOptimizers, "the update rule (every key below is accepted for every type)"));
    add(number_key<Config>("optimizer.lr", [](auto& c) -> auto& { return c.optimizer.lr; }, {0, false}, "base learning rate"));
    add(number_key<Config>("optimizer.momentum", [](auto& c) -> auto& { return c.optimizer.momentum; }, {0, true, 1, false}, "sgd momentum"));
    add(number_key<Config>("optimizer.dampening", [](auto& c) -> auto& { return c.optimizer.dampening; }, {0, true, 1, false}, "sgd dampening"));
    add(bool_key<Config>("optimizer.nesterov", [](auto& c) -> auto& { return c.optimizer.nesterov; }, "sgd Nesterov momentum; needs momentum > 0 and dampening 0"));
    add(number_key<Config>("optimizer.weight_decay", [](auto& c) -> auto& { return c.optimizer.weight_decay; }, {0, true}, "L2 (sgd, adam) or decoupled (adamw) weight decay"));
    add(number_key<Config>("optimizer.beta1", [](auto& c) -> auto& { return c.optimizer.beta1; }, {0, true, 1, false}, "adam, adamw: first-moment decay"));
    add(number_key<Config>("optimizer.beta2", [](auto& c) -> auto& { return c.optimizer.beta2; }, {0, true, 1, false}, "adam, adamw: second-moment decay"));
    add(number_key<Config>("optimizer.eps", [](auto& c) -> auto& { return c.optimizer.eps; }, {0, false}, "adam, adamw: denominator epsilon"));

    add(choice_key<Config>("lr_schedule.type", [](auto& c) -> auto& { return c.lr_schedule.type; }, kSchedules, "learning-rate schedule"));
    add(int_key<Config>("lr_schedule.warmup_epochs", [](auto& c) -> auto& { return c.lr_schedule.warmup_epochs; }, 0, "linear warm-up epochs; less than train.epochs"));
    add(int_key<Config>("lr_schedule.step_size", [](auto& c) -> auto& { return c.lr_schedule.step_size; }, 1, "step: epochs between decays"));
    add(number_key<Config>("lr_schedule.gamma", [](auto& c) -> auto& { return c.lr_schedule.gamma; }, {0, false, 1, true}, "step: decay factor"));
    add(number_key<Config>("lr_schedule.min_lr", [](auto& c) -> auto& { return c.lr_schedule.min_lr; }, {0, true}, "cosine: the final learning rate"));

    add(string_key<Config>("output.dir", [](auto& c) -> auto& { return c.output.dir; }, "the folder that holds run folders"));
    add(int_key<Config>("output.checkpoint_every", [](auto& c) -> auto& { return c.output.checkpoint_every; }, 0, "epochs between checkpoints; 0 = only at the end"));

    add(bool_key<Config>("sparse.enabled", [](auto& c) -> auto& { return c.sparse.enabled; }, "execute a pruned layer in CSR once its sparsity reaches the threshold"));
    add(threshold_key("sparse.threshold", [](auto& c) -> auto& { return c.sparse.threshold; },
                      [](auto& c) -> auto& { return c.sparse.auto_threshold; },
                      "device cpu: the CSR sparsity threshold; \"auto\" times both (not bitwise reproducible)"));
    add(threshold_key("sparse.threshold_cuda", [](auto& c) -> auto& { return c.sparse.threshold_cuda; },
                      [](auto& c) -> auto& { return c.sparse.auto_threshold_cuda; }, "the same on device cuda"));
    add(choice_key<Config>("sparse.impl", [](auto& c) -> auto& { return c.sparse.impl; }, kSparseImpls,
                           "the CSR products on device cuda: our kernels or cuSPARSE (a real GPU only)"));
    add_pruning_keys(t);
    return t;
  }();
  return table;
}

// Rules over several keys, in the order they are checked.
void check_rules(const Config& c) {
  const bool synthetic = c.data.dataset == DatasetKind::synthetic;
  const int train_size = synthetic ? c.data.synthetic.train : kMnistTrainImages;
  if (c.data.validation >= train_size)
    fail_key("data.validation = " + std::to_string(c.data.validation) + " leaves no training samples (" +
             (synthetic ? "data.synthetic.train = " + std::to_string(train_size)
                        : std::string(to_string(c.data.dataset)) + " has " + std::to_string(train_size) + " training images") +
             ")");
  const auto& o = c.optimizer;
  if (o.nesterov && o.momentum == 0) fail_key("optimizer.nesterov = true needs optimizer.momentum > 0 (momentum is 0)");
  if (o.nesterov && o.dampening != 0)
    fail_key("optimizer.nesterov = true needs optimizer.dampening = 0 (dampening is " + number_text(o.dampening) + ")");
  if (c.train.micro_batches > c.train.batch_size)
    fail_key("train.micro_batches = " + std::to_string(c.train.micro_batches) +
             " must be at most train.batch_size = " + std::to_string(c.train.batch_size) +
             " (every part of a batch needs a sample)");
  if (c.lr_schedule.warmup_epochs >= c.train.epochs)
    fail_key("lr_schedule.warmup_epochs = " + std::to_string(c.lr_schedule.warmup_epochs) +
             " must be less than train.epochs = " + std::to_string(c.train.epochs));
  check_pruning_rules(c);
}

}  // namespace

Config parse_config(const json& raw, const std::string& source_name) {
  Config c;
  c.name = default_name(source_name);
  try {
    parse_keys(config_keys(), {"data", "model"}, raw, c);
    check_rules(c);
  } catch (const ConfigError& e) {
    throw ConfigError((source_name.empty() ? "" : source_name + ": ") + e.what());
  }
  return c;
}

json to_json(const Config& c) { return write_keys(config_keys(), c); }

// ---------------------------------------------------------------------------------------------
// Overrides.

namespace {
// The check nlohmann's dump() makes (and throws from) on every string it writes.
bool is_utf8(const std::string& text) {
  try {
    (void)json(text).dump();
    return true;
  } catch (const json::type_error&) {
    return false;
  }
}
}  // namespace

void apply_override(json& raw, const std::string& assignment) {
  const std::string where = "override \"" + excerpt(assignment) + "\": ";
  auto fail = [&](const std::string& msg) { throw ConfigError(where + msg); };
  // A config file is JSON, hence UTF-8; an override that is not would put a key or string in the
  // config that every later dump() (messages, config.json, checkpoints) throws on.
  if (!is_utf8(assignment)) fail("not valid UTF-8 text");

  const size_t eq = assignment.find('=');
  if (eq == std::string::npos) fail("expected key=value (e.g. optimizer.lr=0.1)");
  auto trim = [](std::string s) {
    const char* ws = " \t\r\n";
    size_t b = s.find_first_not_of(ws);
    if (b == std::string::npos) return std::string();
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
  };
  const std::string key_text = trim(assignment.substr(0, eq));
  const std::string value_text = trim(assignment.substr(eq + 1));
  if (key_text.empty()) fail("empty key before '='");

  // "model.layers[2].kernel" and "model.layers.2.kernel" name the same key.
  std::vector<std::string> segments;
  {
    std::string normalized;
    for (char ch : key_text) {
      if (ch == '[') normalized += '.';
      else if (ch != ']') normalized += ch;
    }
    std::stringstream ss(normalized);
    std::string seg;
    while (std::getline(ss, seg, '.')) segments.push_back(seg);
    if (!normalized.empty() && normalized.back() == '.') segments.push_back("");
  }

  // A value that is not JSON is a string (--set name=run1); JSON too deep or out of range is an error.
  json value;
  try {
    value = parse_user_json(value_text, "override \"" + excerpt(key_text) + "\"");
  } catch (const JsonLimitError&) {
    throw;
  } catch (const ConfigError&) {
    value = value_text;
  }

  for (const std::string& seg : segments)
    if (seg.empty()) fail("malformed key \"" + key_text + "\" (empty segment)");
  // Edit a copy, so that a failed override leaves `raw` as it was.
  json edited = raw;
  try {
    override_slot(config_keys(), segments, edited) = std::move(value);
  } catch (const JsonLimitError&) {
    throw;
  } catch (const ConfigError& e) {
    fail(e.what());
  }
  raw = std::move(edited);
}


std::string config_reference() {
  return "# Config reference\n\n"
         "Every key of an experiment config (JSON), generated from the key table in "
         "`experiment/config_keys.cpp` by `sparsetrain config-reference`. Keys are written as dotted "
         "paths: `optimizer.lr` is `{\"optimizer\": {\"lr\": ...}}` in a file and `--set optimizer.lr=0.1` "
         "on the command line. A key whose *Applies* column names a condition is refused when the "
         "condition does not hold. `to_json` (config.json in a run folder) writes every key that applies.\n" +
         reference_markdown(config_keys());
}

}  // namespace st::experiment
