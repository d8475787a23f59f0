// experiment/config.cpp — JSON -> Config validation, overrides, and Config -> JSON.
// The key tree (schema_root) is the one list of known keys: the validator checks unknown keys
// against it and apply_override walks it, so the two can never disagree.
#include "experiment/config.h"
#include "experiment/json_errors.h"

#include "core/check.h"
#include "pruning/config.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <utility>

namespace st::experiment {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Choice tables: the config spelling of every enum value, in declaration order.

namespace {

template <class E>
struct Choice {
  E value;
  const char* text;
};

constexpr Choice<Device> kDevices[] = {{Device::Cpu, "cpu"}, {Device::Cuda, "cuda"}};
constexpr Choice<Backend> kBackends[] = {{Backend::Onednn, "onednn"}, {Backend::Native, "native"}};
constexpr Choice<SparseImpl> kSparseImpls[] = {{SparseImpl::Native, "native"},
                                               {SparseImpl::Cusparse, "cusparse"}};
constexpr Choice<Dataset> kDatasets[] = {{Dataset::Mnist, "mnist"},
                                         {Dataset::FashionMnist, "fashion_mnist"},
                                         {Dataset::Synthetic, "synthetic"}};
constexpr Choice<Arch> kArchs[] = {{Arch::Mlp, "mlp"},
                                   {Arch::Lenet300, "lenet300"},
                                   {Arch::Lenet5, "lenet5"},
                                   {Arch::SimpleCnn, "simplecnn"},
                                   {Arch::Layers, "layers"}};
constexpr Choice<Init> kInits[] = {{Init::KaimingUniform, "kaiming_uniform"},
                                   {Init::KaimingNormal, "kaiming_normal"},
                                   {Init::GlorotUniform, "glorot_uniform"},
                                   {Init::GlorotNormal, "glorot_normal"},
                                   {Init::Pytorch, "pytorch"}};
constexpr Choice<OptimizerType> kOptimizers[] = {{OptimizerType::Sgd, "sgd"},
                                                 {OptimizerType::Adam, "adam"},
                                                 {OptimizerType::AdamW, "adamw"}};
constexpr Choice<LrScheduleType> kSchedules[] = {{LrScheduleType::Constant, "constant"},
                                                 {LrScheduleType::Step, "step"},
                                                 {LrScheduleType::Cosine, "cosine"}};
constexpr Choice<LayerType> kLayerTypes[] = {{LayerType::Linear, "linear"},
                                             {LayerType::Conv2d, "conv2d"},
                                             {LayerType::MaxPool2d, "maxpool2d"},
                                             {LayerType::AvgPool2d, "avgpool2d"},
                                             {LayerType::ReLU, "relu"},
                                             {LayerType::Dropout, "dropout"},
                                             {LayerType::Flatten, "flatten"}};

template <class E, size_t N>
const char* choice_text(const Choice<E> (&table)[N], E value) {
  for (const auto& c : table)
    if (c.value == value) return c.text;
  return "?";
}

}  // namespace

const char* to_string(Device v) { return choice_text(kDevices, v); }
const char* to_string(Backend v) { return choice_text(kBackends, v); }
const char* to_string(SparseImpl v) { return choice_text(kSparseImpls, v); }
const char* to_string(Dataset v) { return choice_text(kDatasets, v); }
const char* to_string(Arch v) { return choice_text(kArchs, v); }
const char* to_string(Init v) { return choice_text(kInits, v); }
const char* to_string(OptimizerType v) { return choice_text(kOptimizers, v); }
const char* to_string(LrScheduleType v) { return choice_text(kSchedules, v); }
const char* to_string(LayerType v) { return choice_text(kLayerTypes, v); }

namespace {

// ---------------------------------------------------------------------------------------------
// The key tree.

struct SchemaNode {
  enum Kind { Leaf, Object, ObjectArray, Free };  // Free: anything below is accepted (pruning)
  std::string key;
  Kind kind = Leaf;
  std::vector<SchemaNode> children;  // Object: its keys; ObjectArray: one Object node, the element

  const SchemaNode* child(const std::string& k) const {
    for (const auto& c : children)
      if (c.key == k) return &c;
    return nullptr;
  }
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    for (const auto& c : children) out.push_back(c.key);
    return out;
  }
};

SchemaNode leaf(const char* k) { return {k, SchemaNode::Leaf, {}}; }
SchemaNode object(const char* k, std::vector<SchemaNode> children) {
  return {k, SchemaNode::Object, std::move(children)};
}

const std::vector<std::string> kLayerKeys = {"type",   "name",    "out_features", "out_channels",
                                             "kernel", "stride",  "padding",      "bias",
                                             "p"};

const SchemaNode& schema_root() {
  static const SchemaNode root = [] {
    SchemaNode element{"[]", SchemaNode::Object, {}};
    for (const auto& k : kLayerKeys) element.children.push_back(leaf(k.c_str()));
    SchemaNode layers{"layers", SchemaNode::ObjectArray, {element}};
    return object("", {
        leaf("name"), leaf("seed"), leaf("threads"), leaf("device"), leaf("backend"),
        object("data", {leaf("dataset"), leaf("dir"), leaf("validation"), leaf("normalize"),
                        object("synthetic", {leaf("train"), leaf("test"), leaf("classes"),
                                             leaf("channels"), leaf("height"), leaf("width")})}),
        object("model", {leaf("arch"), leaf("hidden"), leaf("init"), leaf("dropout"), layers}),
        object("train", {leaf("epochs"), leaf("batch_size"), leaf("eval_batch_size")}),
        object("optimizer", {leaf("type"), leaf("lr"), leaf("momentum"), leaf("dampening"),
                             leaf("nesterov"), leaf("weight_decay"), leaf("beta1"), leaf("beta2"),
                             leaf("eps")}),
        object("lr_schedule", {leaf("type"), leaf("warmup_epochs"), leaf("step_size"),
                               leaf("gamma"), leaf("min_lr")}),
        object("output", {leaf("dir"), leaf("checkpoint_every")}),
        object("sparse", {leaf("enabled"), leaf("threshold"), leaf("threshold_cuda"), leaf("impl")}),
        SchemaNode{"pruning", SchemaNode::Free, {}},
    });
  }();
  return root;
}

// ---------------------------------------------------------------------------------------------
// Message helpers.

std::string quoted_list(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", \"" : "\"") + items[i] + "\"";
  return out;
}


// ---------------------------------------------------------------------------------------------
// The validator. `prefix` is "<file>: " (or ""), paths are full ("optimizer.lr", "model.layers[2].kernel").

class Validator {
 public:
  explicit Validator(std::string prefix) : prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& message) const { throw ConfigError(prefix_ + message); }

  // Checks that `v` at `path` is an object whose keys all appear in `allowed`.
  void check_object(const json& v, const std::string& path, const std::vector<std::string>& allowed) const {
    if (!v.is_object()) fail((path.empty() ? std::string("the config") : path) + ": expected an object, got " + describe_value(v));
    for (const auto& item : v.items()) {
      if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end())
        fail("unknown key \"" + excerpt(join(path, item.key())) + "\"" + did_you_mean(item.key(), allowed));
    }
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  long long integer(const json& v, const std::string& path) const {
    if (!v.is_number_integer()) fail(path + ": expected an integer, got " + describe_value(v));
    if (v.is_number_unsigned() && v.get<unsigned long long>() > static_cast<unsigned long long>(LLONG_MAX))
      fail(path + " = " + v.dump() + " is too large");
    return v.get<long long>();
  }

  // An int in [lo, INT_MAX].
  int int_at_least(const json& v, const std::string& path, int lo) const {
    long long x = integer(v, path);
    if (x < lo) fail(path + " = " + std::to_string(x) + " is out of range (allowed: >= " + std::to_string(lo) + ")");
    if (x > INT_MAX) fail(path + " = " + std::to_string(x) + " is out of range (allowed: at most " + std::to_string(INT_MAX) + ")");
    return static_cast<int>(x);
  }

  double number(const json& v, const std::string& path) const {
    if (!v.is_number()) fail(path + ": expected a number, got " + describe_value(v));
    return v.get<double>();
  }

  // A number in the interval lo..hi; `hi` = +inf for no upper bound.
  double number_in(const json& v, const std::string& path, double lo, bool lo_closed, double hi, bool hi_closed) const {
    double x = number(v, path);
    bool ok = (lo_closed ? x >= lo : x > lo) && (hi_closed ? x <= hi : x < hi);
    if (!ok) {
      std::string range;
      if (std::isinf(hi)) range = (lo_closed ? ">= " : "> ") + number_text(lo);
      else range = std::string(lo_closed ? "[" : "(") + number_text(lo) + ", " + number_text(hi) + (hi_closed ? "]" : ")");
      fail(path + " = " + number_text(x) + " is out of range (allowed: " + range + ")");
    }
    return x;
  }

  bool boolean(const json& v, const std::string& path) const {
    if (!v.is_boolean()) fail(path + ": expected a boolean (true or false), got " + describe_value(v));
    return v.get<bool>();
  }

  std::string string(const json& v, const std::string& path) const {
    if (!v.is_string()) fail(path + ": expected a string, got " + describe_value(v));
    return v.get<std::string>();
  }

  template <class E, size_t N>
  E choice(const json& v, const std::string& path, const Choice<E> (&table)[N]) const {
    std::vector<std::string> names;
    for (const auto& c : table) names.push_back(c.text);
    if (!v.is_string()) fail(path + ": expected a string, one of " + quoted_list(names) + ", got " + describe_value(v));
    const std::string s = v.get<std::string>();
    for (const auto& c : table)
      if (s == c.text) return c.value;
    fail(path + " = \"" + excerpt(s) + "\" is not one of " + quoted_list(names) + did_you_mean(s, names));
  }

  // An int > 0 or an [h, w] pair of them (>= lo).
  std::array<int, 2> pair(const json& v, const std::string& path, int lo) const {
    if (v.is_number_integer()) {
      int x = int_at_least(v, path, lo);
      return {x, x};
    }
    if (!v.is_array() || v.size() != 2)
      fail(path + ": expected an integer or an [h, w] pair of integers, got " + describe_value(v));
    return {int_at_least(v[0], path + "[0]", lo), int_at_least(v[1], path + "[1]", lo)};
  }

 private:
  std::string prefix_;
};

// A view of one object in the raw config: checks its keys once, then reads values with defaults.
class Section {
 public:
  Section(const Validator& val, const json* v, std::string path, const SchemaNode& node)
      : val_(val), v_(v), path_(std::move(path)) {
    if (v_) val_.check_object(*v_, path_, node.keys());
  }
  const json* find(const std::string& key) const {
    if (!v_) return nullptr;
    auto it = v_->find(key);
    return it == v_->end() ? nullptr : &*it;
  }
  bool has(const std::string& key) const { return find(key) != nullptr; }
  std::string path(const std::string& key) const { return Validator::join(path_, key); }
  const json& required(const std::string& key, const std::string& why = "") const {
    const json* v = find(key);
    if (!v) val_.fail("missing required key \"" + path(key) + "\"" + why);
    return *v;
  }

  int int_at_least(const std::string& key, int def, int lo) const {
    const json* v = find(key);
    return v ? val_.int_at_least(*v, path(key), lo) : def;
  }
  double number_in(const std::string& key, double def, double lo, bool lo_closed, double hi, bool hi_closed) const {
    const json* v = find(key);
    return v ? val_.number_in(*v, path(key), lo, lo_closed, hi, hi_closed) : def;
  }
  bool boolean(const std::string& key, bool def) const {
    const json* v = find(key);
    return v ? val_.boolean(*v, path(key)) : def;
  }
  std::string string(const std::string& key, const std::string& def) const {
    const json* v = find(key);
    return v ? val_.string(*v, path(key)) : def;
  }
  template <class E, size_t N>
  E choice(const std::string& key, E def, const Choice<E> (&table)[N]) const {
    const json* v = find(key);
    return v ? val_.choice(*v, path(key), table) : def;
  }

 private:
  const Validator& val_;
  const json* v_;
  std::string path_;
};

constexpr double kInf = std::numeric_limits<double>::infinity();

// Which layer keys each type takes (besides "type" and "name").
std::vector<std::string> layer_keys_for(LayerType t) {
  switch (t) {
    case LayerType::Linear: return {"type", "name", "out_features", "bias"};
    case LayerType::Conv2d: return {"type", "name", "out_channels", "kernel", "stride", "padding", "bias"};
    case LayerType::MaxPool2d:
    case LayerType::AvgPool2d: return {"type", "name", "kernel", "stride", "padding"};
    case LayerType::Dropout: return {"type", "name", "p"};
    case LayerType::ReLU:
    case LayerType::Flatten: return {"type", "name"};
  }
  return {};
}

bool valid_layer_name(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) return false;
  return true;
}

LayerSpec parse_layer(const Validator& val, const json& v, const std::string& path) {
  if (!v.is_object()) val.fail(path + ": expected a layer object, got " + describe_value(v));
  LayerSpec layer;
  auto type_it = v.find("type");
  if (type_it == v.end()) {
    // A misspelled "type" reads better as an unknown key than as a missing one.
    for (const auto& item : v.items())
      if (std::find(kLayerKeys.begin(), kLayerKeys.end(), item.key()) == kLayerKeys.end())
        val.fail("unknown key \"" + excerpt(path + "." + item.key()) + "\"" + did_you_mean(item.key(), kLayerKeys));
    val.fail("missing required key \"" + path + ".type\"");
  }
  layer.type = val.choice(*type_it, path + ".type", kLayerTypes);
  const auto allowed = layer_keys_for(layer.type);
  for (const auto& item : v.items()) {
    const std::string& k = item.key();
    if (std::find(allowed.begin(), allowed.end(), k) != allowed.end()) continue;
    if (std::find(kLayerKeys.begin(), kLayerKeys.end(), k) != kLayerKeys.end())
      val.fail(path + "." + k + " is not used by layer type \"" + to_string(layer.type) +
               "\" (its keys: " + quoted_list(allowed) + ")");
    val.fail("unknown key \"" + excerpt(path + "." + k) + "\"" + did_you_mean(k, allowed));
  }
  auto key = [&](const char* k) { return path + "." + k; };
  auto req = [&](const char* k) -> const json& {
    auto it = v.find(k);
    if (it == v.end())
      val.fail("missing required key \"" + key(k) + "\" (layer type \"" + to_string(layer.type) + "\")");
    return *it;
  };
  if (v.contains("name")) {
    layer.name = val.string(v["name"], key("name"));
    if (!valid_layer_name(layer.name))
      val.fail(key("name") + " = \"" + excerpt(layer.name) + "\" is not a valid name (allowed: letters, digits, '_', '-')");
  }
  switch (layer.type) {
    case LayerType::Linear:
      layer.out_features = val.int_at_least(req("out_features"), key("out_features"), 1);
      if (v.contains("bias")) layer.bias = val.boolean(v["bias"], key("bias"));
      break;
    case LayerType::Conv2d:
      layer.out_channels = val.int_at_least(req("out_channels"), key("out_channels"), 1);
      layer.kernel = val.pair(req("kernel"), key("kernel"), 1);
      if (v.contains("stride")) layer.stride = val.pair(v["stride"], key("stride"), 1);
      if (v.contains("padding")) layer.padding = val.pair(v["padding"], key("padding"), 0);
      if (v.contains("bias")) layer.bias = val.boolean(v["bias"], key("bias"));
      break;
    case LayerType::MaxPool2d:
    case LayerType::AvgPool2d:
      layer.kernel = val.pair(req("kernel"), key("kernel"), 1);
      layer.stride = v.contains("stride") ? val.pair(v["stride"], key("stride"), 1) : layer.kernel;
      if (v.contains("padding")) layer.padding = val.pair(v["padding"], key("padding"), 0);
      // PyTorch's rule: a pool window must always overlap the unpadded input.
      for (int d = 0; d < 2; ++d)
        if (layer.padding[d] > layer.kernel[d] / 2)
          val.fail(key("padding") + " = " + v["padding"].dump() + " is out of range (allowed: at most half the kernel, " +
                   std::to_string(layer.kernel[d] / 2) + ")");
      break;
    case LayerType::Dropout:
      layer.p = val.number_in(req("p"), key("p"), 0, true, 1, false);
      break;
    case LayerType::ReLU:
    case LayerType::Flatten: break;
  }
  return layer;
}

json pair_to_json(const std::array<int, 2>& p) {
  return p[0] == p[1] ? json(p[0]) : json::array({p[0], p[1]});
}

json layer_to_json(const LayerSpec& l) {
  json j = {{"type", to_string(l.type)}};
  if (!l.name.empty()) j["name"] = l.name;
  switch (l.type) {
    case LayerType::Linear:
      j["out_features"] = l.out_features;
      j["bias"] = l.bias;
      break;
    case LayerType::Conv2d:
      j["out_channels"] = l.out_channels;
      j["kernel"] = pair_to_json(l.kernel);
      j["stride"] = pair_to_json(l.stride);
      j["padding"] = pair_to_json(l.padding);
      j["bias"] = l.bias;
      break;
    case LayerType::MaxPool2d:
    case LayerType::AvgPool2d:
      j["kernel"] = pair_to_json(l.kernel);
      j["stride"] = pair_to_json(l.stride);
      j["padding"] = pair_to_json(l.padding);
      break;
    case LayerType::Dropout: j["p"] = l.p; break;
    case LayerType::ReLU:
    case LayerType::Flatten: break;
  }
  return j;
}

constexpr int kMnistTrainImages = 60000;  // both MNIST and Fashion-MNIST

std::string default_name(const std::string& source_name) {
  std::string stem = std::filesystem::path(source_name).stem().string();
  return stem.empty() ? "run" : stem;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Config parse_config(const json& raw, const std::string& source_name) {
  const Validator val(source_name.empty() ? "" : source_name + ": ");
  const SchemaNode& root = schema_root();
  Config c;

  Section top(val, &raw, "", root);
  c.name = top.string("name", default_name(source_name));
  if (c.name.empty() || c.name.find('/') != std::string::npos)
    val.fail("name = \"" + excerpt(c.name) + "\" is not a valid run name (must be non-empty, without '/')");
  if (const json* v = top.find("seed")) {
    if (!v->is_number_integer()) val.fail("seed: expected an integer, got " + describe_value(*v));
    // A JSON parser gives non-negative integers as unsigned, but JSON built in C++ ({"seed", 5})
    // holds them signed: accept either when the value is >= 0.
    if (!v->is_number_unsigned() && v->get<std::int64_t>() < 0)
      val.fail("seed = " + v->dump() + " is out of range (allowed: >= 0)");
    c.seed = v->is_number_unsigned() ? v->get<std::uint64_t>()
                                     : static_cast<std::uint64_t>(v->get<std::int64_t>());
  }
  c.threads = top.int_at_least("threads", 0, 0);
  c.device = top.choice("device", Device::Cpu, kDevices);
  c.backend = top.choice("backend", Backend::Onednn, kBackends);

  // data
  {
    const SchemaNode& node = *root.child("data");
    Section data(val, &top.required("data"), "data", node);
    c.data.dataset = val.choice(data.required("dataset"), "data.dataset", kDatasets);
    const bool synthetic = c.data.dataset == Dataset::Synthetic;
    const char* default_dir = c.data.dataset == Dataset::Mnist          ? "datasets/mnist"
                              : c.data.dataset == Dataset::FashionMnist ? "datasets/fashion-mnist"
                                                                        : "";
    c.data.dir = data.string("dir", default_dir);
    c.data.validation = data.int_at_least("validation", synthetic ? 0 : 5000, 0);
    c.data.normalize = data.boolean("normalize", true);
    if (data.has("synthetic") && !synthetic)
      val.fail("data.synthetic is only allowed with data.dataset \"synthetic\" (dataset is \"" +
               std::string(to_string(c.data.dataset)) + "\")");
    Section syn(val, data.find("synthetic"), "data.synthetic", *node.child("synthetic"));
    auto& s = c.data.synthetic;
    s.train = syn.int_at_least("train", s.train, 1);
    s.test = syn.int_at_least("test", s.test, 1);
    s.classes = syn.int_at_least("classes", s.classes, 2);
    s.channels = syn.int_at_least("channels", s.channels, 1);
    s.height = syn.int_at_least("height", s.height, 1);
    s.width = syn.int_at_least("width", s.width, 1);
    const int train_size = synthetic ? s.train : kMnistTrainImages;
    if (c.data.validation >= train_size)
      val.fail("data.validation = " + std::to_string(c.data.validation) + " leaves no training samples (" +
               (synthetic ? "data.synthetic.train = " + std::to_string(train_size)
                          : std::string(to_string(c.data.dataset)) + " has " + std::to_string(train_size) + " training images") +
               ")");
  }

  // model
  {
    Section model(val, &top.required("model"), "model", *root.child("model"));
    c.model.arch = val.choice(model.required("arch"), "model.arch", kArchs);
    const std::string arch_text = std::string("\"") + to_string(c.model.arch) + "\"";
    if (c.model.arch == Arch::Mlp) {
      const json& h = model.required("hidden", " (model.arch " + arch_text + ")");
      if (!h.is_array()) val.fail("model.hidden: expected an array of integers, got " + describe_value(h));
      for (size_t i = 0; i < h.size(); ++i)
        c.model.hidden.push_back(val.int_at_least(h[i], "model.hidden[" + std::to_string(i) + "]", 1));
    } else if (model.has("hidden")) {
      val.fail("model.hidden is only allowed with model.arch \"mlp\" (arch is " + arch_text + ")");
    }
    c.model.init = model.choice("init", Init::Pytorch, kInits);
    c.model.dropout = model.number_in("dropout", 0.0, 0, true, 1, false);
    if (c.model.arch == Arch::Layers) {
      const json& layers = model.required("layers", " (model.arch " + arch_text + ")");
      if (!layers.is_array() || layers.empty())
        val.fail("model.layers: expected a non-empty array of layer objects, got " + describe_value(layers));
      std::set<std::string> names;
      for (size_t i = 0; i < layers.size(); ++i) {
        const std::string path = "model.layers[" + std::to_string(i) + "]";
        c.model.layers.push_back(parse_layer(val, layers[i], path));
        const std::string& name = c.model.layers.back().name;
        if (!name.empty() && !names.insert(name).second)
          val.fail(path + ".name = \"" + name + "\" is already used by an earlier layer (names must be unique)");
      }
    } else if (model.has("layers")) {
      val.fail("model.layers is only allowed with model.arch \"layers\" (arch is " + arch_text + ")");
    }
  }

  // train
  {
    Section train(val, top.find("train"), "train", *root.child("train"));
    c.train.epochs = train.int_at_least("epochs", 10, 1);
    c.train.batch_size = train.int_at_least("batch_size", 64, 1);
    c.train.eval_batch_size = train.int_at_least("eval_batch_size", 1000, 1);
  }

  // optimizer
  {
    Section opt(val, top.find("optimizer"), "optimizer", *root.child("optimizer"));
    auto& o = c.optimizer;
    o.type = opt.choice("type", OptimizerType::Sgd, kOptimizers);
    o.lr = opt.number_in("lr", o.lr, 0, false, kInf, false);
    o.momentum = opt.number_in("momentum", o.momentum, 0, true, 1, false);
    o.dampening = opt.number_in("dampening", o.dampening, 0, true, 1, false);
    o.nesterov = opt.boolean("nesterov", false);
    o.weight_decay = opt.number_in("weight_decay", o.weight_decay, 0, true, kInf, false);
    o.beta1 = opt.number_in("beta1", o.beta1, 0, true, 1, false);
    o.beta2 = opt.number_in("beta2", o.beta2, 0, true, 1, false);
    o.eps = opt.number_in("eps", o.eps, 0, false, kInf, false);
    if (o.nesterov && o.momentum == 0)
      val.fail("optimizer.nesterov = true needs optimizer.momentum > 0 (momentum is 0)");
    if (o.nesterov && o.dampening != 0)
      val.fail("optimizer.nesterov = true needs optimizer.dampening = 0 (dampening is " + number_text(o.dampening) + ")");
  }

  // lr_schedule
  {
    Section sch(val, top.find("lr_schedule"), "lr_schedule", *root.child("lr_schedule"));
    auto& s = c.lr_schedule;
    s.type = sch.choice("type", LrScheduleType::Constant, kSchedules);
    s.warmup_epochs = sch.int_at_least("warmup_epochs", 0, 0);
    s.step_size = sch.int_at_least("step_size", 10, 1);
    s.gamma = sch.number_in("gamma", 0.1, 0, false, 1, true);
    s.min_lr = sch.number_in("min_lr", 0.0, 0, true, kInf, false);
    if (s.warmup_epochs >= c.train.epochs)
      val.fail("lr_schedule.warmup_epochs = " + std::to_string(s.warmup_epochs) +
               " must be less than train.epochs = " + std::to_string(c.train.epochs));
  }

  // output
  {
    Section out(val, top.find("output"), "output", *root.child("output"));
    c.output.dir = out.string("dir", "runs");
    c.output.checkpoint_every = out.int_at_least("checkpoint_every", 1, 0);
  }

  // sparse
  {
    Section sp(val, top.find("sparse"), "sparse", *root.child("sparse"));
    c.sparse.enabled = sp.boolean("enabled", true);
    // A number in [0, 1] or "auto", for each device.
    auto threshold = [&](const char* key, double def, double& value, bool& automatic) {
      const json* t = sp.find(key);
      if (t && t->is_string()) {
        if (t->get<std::string>() != "auto")
          val.fail(std::string("sparse.") + key + " = " + excerpt(t->dump()) +
                   " is not allowed (expected a number in [0, 1] or \"auto\")");
        automatic = true;
      } else {
        value = sp.number_in(key, def, 0, true, 1, true);
      }
    };
    threshold("threshold", 0.7, c.sparse.threshold, c.sparse.auto_threshold);
    threshold("threshold_cuda", 0.9, c.sparse.threshold_cuda, c.sparse.auto_threshold_cuda);
    c.sparse.impl = sp.choice("impl", SparseImpl::Native, kSparseImpls);
  }

  if (const json* p = top.find("pruning"); p && !p->is_null()) {
    if (!p->is_object()) val.fail("pruning: expected an object, got " + describe_value(*p));
    c.pruning = *p;
    // Validated here so that a bad pruning block fails at start-up; the trainer re-parses it into
    // the typed pruning::PruningConfig (kept as JSON here so overrides and sweeps edit it freely).
    try {
      pruning::parse_pruning_config(*p, c.train.epochs);
    } catch (const Error& e) {
      val.fail(e.what());
    }
  }
  return c;
}

json to_json(const Config& c) {
  json j;
  j["name"] = c.name;
  j["seed"] = c.seed;
  j["threads"] = c.threads;
  j["device"] = to_string(c.device);
  j["backend"] = to_string(c.backend);

  json data = {{"dataset", to_string(c.data.dataset)},
               {"dir", c.data.dir},
               {"validation", c.data.validation},
               {"normalize", c.data.normalize}};
  if (c.data.dataset == Dataset::Synthetic) {
    const auto& s = c.data.synthetic;
    data["synthetic"] = {{"train", s.train},       {"test", s.test},     {"classes", s.classes},
                         {"channels", s.channels}, {"height", s.height}, {"width", s.width}};
  }
  j["data"] = data;

  json model = {{"arch", to_string(c.model.arch)}, {"init", to_string(c.model.init)}, {"dropout", c.model.dropout}};
  if (c.model.arch == Arch::Mlp) model["hidden"] = c.model.hidden;
  if (c.model.arch == Arch::Layers) {
    model["layers"] = json::array();
    for (const auto& l : c.model.layers) model["layers"].push_back(layer_to_json(l));
  }
  j["model"] = model;

  j["train"] = {{"epochs", c.train.epochs}, {"batch_size", c.train.batch_size}, {"eval_batch_size", c.train.eval_batch_size}};
  const auto& o = c.optimizer;
  j["optimizer"] = {{"type", to_string(o.type)}, {"lr", o.lr},         {"momentum", o.momentum},
                    {"dampening", o.dampening},  {"nesterov", o.nesterov}, {"weight_decay", o.weight_decay},
                    {"beta1", o.beta1},          {"beta2", o.beta2},       {"eps", o.eps}};
  const auto& s = c.lr_schedule;
  j["lr_schedule"] = {{"type", to_string(s.type)}, {"warmup_epochs", s.warmup_epochs}, {"step_size", s.step_size},
                      {"gamma", s.gamma},          {"min_lr", s.min_lr}};
  j["output"] = {{"dir", c.output.dir}, {"checkpoint_every", c.output.checkpoint_every}};
  j["sparse"] = {{"enabled", c.sparse.enabled}};
  if (c.sparse.auto_threshold)
    j["sparse"]["threshold"] = "auto";
  else
    j["sparse"]["threshold"] = c.sparse.threshold;
  if (c.sparse.auto_threshold_cuda)
    j["sparse"]["threshold_cuda"] = "auto";
  else
    j["sparse"]["threshold_cuda"] = c.sparse.threshold_cuda;
  j["sparse"]["impl"] = to_string(c.sparse.impl);
  if (!c.pruning.is_null()) j["pruning"] = c.pruning;
  return j;
}

bool operator==(const Config& a, const Config& b) { return to_json(a) == to_json(b); }

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

  // Edit a copy, so that a failed override leaves `raw` as it was.
  json edited = raw;
  const SchemaNode* node = &schema_root();
  json* cur = &edited;
  std::string path;  // the walked path, in error-message spelling ("model.layers[2].kernel")
  for (const std::string& seg : segments) {
    if (seg.empty()) fail("malformed key \"" + key_text + "\" (empty segment)");
    if (node->kind == SchemaNode::ObjectArray) {
      // An index into an element that already exists: overrides edit layers, they do not add them.
      const bool digits = std::all_of(seg.begin(), seg.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); });
      if (!digits) fail("\"" + path + "\" is an array; expected an index, got \"" + seg + "\"");
      // Past 9 digits it is out of range anyway (and stoul would throw past 2^64).
      const size_t index = seg.size() <= 9 ? std::stoul(seg) : std::numeric_limits<size_t>::max();
      if (!cur->is_array() || index >= cur->size())
        fail("\"" + path + "\" has no element " + seg + " in the config (" +
             (cur->is_array() ? std::to_string(cur->size()) + " elements" : std::string("not an array")) + ")");
      cur = &(*cur)[index];
      path += "[" + seg + "]";
      node = &node->children.front();
      continue;
    }
    const std::string next_path = path.empty() ? seg : path + "." + seg;
    if (node->kind == SchemaNode::Leaf)
      fail("unknown key \"" + excerpt(next_path) + "\" (\"" + path + "\" is a value, not an object)");
    const SchemaNode* child = nullptr;
    if (node->kind == SchemaNode::Object) {
      child = node->child(seg);
      if (!child) fail("unknown key \"" + excerpt(next_path) + "\"" + did_you_mean(seg, node->keys()));
    }
    if (cur->is_null()) *cur = json::object();
    if (!cur->is_object()) fail("cannot set \"" + next_path + "\": \"" + path + "\" is not an object in the config");
    cur = &(*cur)[seg];
    path = next_path;
    if (child) node = child;  // below a Free node everything stays Free
  }
  *cur = std::move(value);
  raw = std::move(edited);
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string prefix = path + ": ";
  json raw = parse_user_json(read_user_file(path, "config file (JSON)"), path);
  for (const auto& o : overrides) {
    try {
      apply_override(raw, o);
    } catch (const ConfigError& e) {
      throw ConfigError(prefix + e.what());
    }
  }
  return parse_config(raw, path);
}

// ---------------------------------------------------------------------------------------------

std::string describe(const Config& c) {
  std::ostringstream s;
  s << c.name << ": " << to_string(c.model.arch);
  if (c.model.arch == Arch::Mlp) {
    s << "[";
    for (size_t i = 0; i < c.model.hidden.size(); ++i) s << (i ? "," : "") << c.model.hidden[i];
    s << "]";
  } else if (c.model.arch == Arch::Layers) {
    s << "(" << c.model.layers.size() << " layers)";
  }
  if (c.model.dropout > 0) s << " dropout=" << number_text(c.model.dropout);
  s << " on " << to_string(c.data.dataset);
  if (c.data.validation > 0) s << " (val " << c.data.validation << ")";
  const auto& o = c.optimizer;
  s << " | " << to_string(o.type) << " lr=" << number_text(o.lr);
  if (o.type == OptimizerType::Sgd) {
    s << " momentum=" << number_text(o.momentum);
    if (o.nesterov) s << " nesterov";
  }
  if (o.weight_decay > 0) s << " wd=" << number_text(o.weight_decay);
  s << " | " << to_string(c.lr_schedule.type) << " lr";
  if (c.lr_schedule.warmup_epochs > 0) s << " +" << c.lr_schedule.warmup_epochs << " warmup";
  s << " | " << c.train.epochs << " epochs x batch " << c.train.batch_size;
  s << " | seed " << c.seed << " | " << to_string(c.device) << "/"
    << (c.device == Device::Cuda ? to_string(c.sparse.impl) : to_string(c.backend));
  s << " threads " << (c.threads == 0 ? std::string("all") : std::to_string(c.threads));
  if (!c.pruning.is_null()) s << " | pruning";
  return s.str();
}

}  // namespace st::experiment
