// tests/experiment/test_config.cpp — experiment/config.h: parsing, defaults, every validation rule
// (message names the key path, and the file when loaded from one), overrides, round trip.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "experiment/atomic_file.h"
#include "experiment/config.h"
#include "experiment/json_errors.h"
#include "experiment/memory_estimate.h"

using namespace st;
using namespace st::experiment;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("st_test_config_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "<no error>";
}

void check_contains(const std::string& message, const std::vector<std::string>& parts) {
  for (const auto& p : parts)
    CHECK_MESSAGE(message.find(p) != std::string::npos, "expected \"" << p << "\" in: " << message);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Every key of `part` is in `whole` with the same value (objects compared key by key).
bool holds(const json& whole, const json& part) {
  if (!part.is_object()) return whole == part;
  if (!whole.is_object()) return false;
  for (const auto& item : part.items())
    if (!whole.contains(item.key()) || !holds(whole[item.key()], item.value())) return false;
  return true;
}

json full_config() {
  return json::parse(R"({
    "name": "mnist_mlp", "seed": 42, "threads": 2, "device": "cuda", "backend": "native",
    "data": {"dataset": "mnist", "dir": "data/mnist", "validation": 1000, "normalize": false},
    "model": {"arch": "mlp", "hidden": [300, 100], "init": "kaiming_uniform", "dropout": 0.25},
    "train": {"epochs": 20, "batch_size": 128, "eval_batch_size": 500},
    "optimizer": {"type": "sgd", "lr": 0.1, "momentum": 0.95, "dampening": 0, "nesterov": true,
                  "weight_decay": 5e-4, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    "lr_schedule": {"type": "cosine", "warmup_epochs": 2, "step_size": 5, "gamma": 0.5, "min_lr": 1e-4},
    "output": {"dir": "out", "checkpoint_every": 5},
    "pruning": {"method": "one_shot", "target": 0.9, "schedule": {"epoch": 1}}
  })");
}

json minimal_config() { return json::parse(R"({"data": {"dataset": "mnist"}, "model": {"arch": "lenet5"}})"); }

json synthetic_config() {
  return json::parse(R"({"data": {"dataset": "synthetic", "synthetic": {"train": 100}},
                         "model": {"arch": "mlp", "hidden": [16]}})");
}

json layers_config() {
  return json::parse(R"({
    "data": {"dataset": "fashion_mnist"},
    "model": {"arch": "layers", "layers": [
      {"type": "conv2d", "name": "conv1", "out_channels": 6, "kernel": 5, "padding": 2},
      {"type": "relu"},
      {"type": "maxpool2d", "kernel": 2},
      {"type": "conv2d", "out_channels": 16, "kernel": [5, 3], "stride": [1, 2], "padding": [0, 1], "bias": false},
      {"type": "avgpool2d", "kernel": [2, 2], "stride": 1, "padding": 1},
      {"type": "flatten"},
      {"type": "dropout", "p": 0.5},
      {"type": "linear", "name": "fc", "out_features": 10, "bias": false}
    ]}
  })");
}

// The raw config after an override (used to build the invalid cases below).
json with(json raw, const std::string& assignment) {
  apply_override(raw, assignment);
  return raw;
}

// The raw config with one JSON-pointer location set (for keys an override would refuse).
json patched(json raw, const std::string& pointer, const json& value) {
  raw[json::json_pointer(pointer)] = value;
  return raw;
}

}  // namespace

TEST_CASE("config: a full valid config parses with the values it states") {
  const Config c = parse_config(full_config(), "configs/mnist_mlp.json");
  CHECK(c.name == "mnist_mlp");
  CHECK(c.seed == 42);
  CHECK(c.threads == 2);
  CHECK(c.device == Device::cuda);
  CHECK(c.backend == DenseBackend::native);
  CHECK(c.data.dataset == DatasetKind::mnist);
  CHECK(c.data.dir == "data/mnist");
  CHECK(c.data.validation == 1000);
  CHECK(c.data.normalize == false);
  CHECK(c.model.arch == Arch::mlp);
  CHECK(c.model.hidden == std::vector<int>{300, 100});
  CHECK(c.model.init == Init::kaiming_uniform);
  CHECK(c.model.dropout == 0.25);
  CHECK(c.model.layers.empty());
  CHECK(c.train.epochs == 20);
  CHECK(c.train.batch_size == 128);
  CHECK(c.train.eval_batch_size == 500);
  CHECK(c.optimizer.type == OptimizerType::sgd);
  CHECK(c.optimizer.lr == 0.1);
  CHECK(c.optimizer.momentum == 0.95);
  CHECK(c.optimizer.dampening == 0);
  CHECK(c.optimizer.nesterov == true);
  CHECK(c.optimizer.weight_decay == 5e-4);
  CHECK(c.optimizer.beta1 == 0.8);
  CHECK(c.optimizer.beta2 == 0.99);
  CHECK(c.optimizer.eps == 1e-6);
  CHECK(c.lr_schedule.type == LrScheduleType::cosine);
  CHECK(c.lr_schedule.warmup_epochs == 2);
  CHECK(c.lr_schedule.step_size == 5);
  CHECK(c.lr_schedule.gamma == 0.5);
  CHECK(c.lr_schedule.min_lr == 1e-4);
  CHECK(c.output.dir == "out");
  CHECK(c.output.checkpoint_every == 5);
  CHECK(holds(to_json(c)["pruning"], full_config()["pruning"]));
}

TEST_CASE("config: defaults are filled for every optional key") {
  const Config c = parse_config(minimal_config(), "configs/lenet5_mnist.json");
  CHECK(c.name == "lenet5_mnist");  // the file stem
  CHECK(c.seed == 1);
  CHECK(c.threads == 0);
  CHECK(c.device == Device::cpu);
  CHECK(c.backend == DenseBackend::onednn);
  CHECK(c.data.dir == "datasets/mnist");
  CHECK(c.data.validation == 5000);
  CHECK(c.data.normalize == true);
  CHECK(c.model.arch == Arch::lenet5);
  CHECK(c.model.hidden.empty());
  CHECK(c.model.init == Init::pytorch);
  CHECK(c.model.dropout == 0.0);
  CHECK(c.train.epochs == 10);
  CHECK(c.train.batch_size == 64);
  CHECK(c.train.eval_batch_size == 1000);
  CHECK(c.optimizer.type == OptimizerType::sgd);
  CHECK(c.optimizer.lr == 0.01);
  CHECK(c.optimizer.momentum == 0.9);
  CHECK(c.optimizer.dampening == 0.0);
  CHECK(c.optimizer.nesterov == false);
  CHECK(c.optimizer.weight_decay == 0.0);
  CHECK(c.optimizer.beta1 == 0.9);
  CHECK(c.optimizer.beta2 == 0.999);
  CHECK(c.optimizer.eps == 1e-8);
  CHECK(c.lr_schedule.type == LrScheduleType::constant);
  CHECK(c.lr_schedule.warmup_epochs == 0);
  CHECK(c.lr_schedule.step_size == 10);
  CHECK(c.lr_schedule.gamma == 0.1);
  CHECK(c.lr_schedule.min_lr == 0.0);
  CHECK(c.output.dir == "runs");
  CHECK(c.output.checkpoint_every == 1);
  CHECK(!c.pruning);
  json null_pruning = minimal_config();
  null_pruning["pruning"] = nullptr;
  CHECK(!parse_config(null_pruning, "").pruning);

  CHECK(parse_config(minimal_config(), "").name == "run");

  SUBCASE("dataset-dependent defaults") {
    const Config f = parse_config(layers_config(), "x.json");
    CHECK(f.data.dataset == DatasetKind::fashion_mnist);
    CHECK(f.data.dir == "datasets/fashion-mnist");
    CHECK(f.data.validation == 5000);
    const Config s = parse_config(synthetic_config(), "x.json");
    CHECK(s.data.dir == "");
    CHECK(s.data.validation == 0);
    CHECK(s.data.synthetic.train == 100);
    CHECK(s.data.synthetic.test == 512);
    CHECK(s.data.synthetic.classes == 10);
    CHECK(s.data.synthetic.channels == 1);
    CHECK(s.data.synthetic.height == 28);
    CHECK(s.data.synthetic.width == 28);
  }
  SUBCASE("to_json writes every applicable key") {
    const json j = to_json(c);
    for (const char* key : {"name", "seed", "threads", "device", "backend"}) CHECK(j.contains(key));
    CHECK(j["data"].size() == 5);          // dataset, dir, validation, normalize, shuffle (no synthetic for mnist)
    CHECK(j["model"].size() == 3);         // arch, init, dropout (no hidden/layers for lenet5)
    CHECK(j["train"].size() == 4);         // epochs, batch_size, micro_batches, eval_batch_size
    CHECK(j["optimizer"].size() == 9);
    CHECK(j["lr_schedule"].size() == 5);
    CHECK(j["output"].size() == 2);
    CHECK_FALSE(j.contains("pruning"));
    CHECK(j["optimizer"]["eps"] == 1e-8);
    CHECK(to_json(parse_config(synthetic_config(), "s.json"))["data"]["synthetic"].size() == 6);
  }
}

TEST_CASE("config: layer specs") {
  const Config c = parse_config(layers_config(), "layers.json");
  const auto& L = c.model.layers;
  REQUIRE(L.size() == 8);
  CHECK(L[0].type == LayerType::conv2d);
  CHECK(L[0].name == "conv1");
  CHECK(L[0].out_channels == 6);
  CHECK(L[0].kernel == std::array<int, 2>{5, 5});
  CHECK(L[0].stride == std::array<int, 2>{1, 1});
  CHECK(L[0].padding == std::array<int, 2>{2, 2});
  CHECK(L[0].bias == true);
  CHECK(L[1].type == LayerType::relu);
  CHECK(L[2].type == LayerType::maxpool2d);
  CHECK(L[2].stride == std::array<int, 2>{2, 2});  // defaults to the kernel
  CHECK(L[3].kernel == std::array<int, 2>{5, 3});
  CHECK(L[3].stride == std::array<int, 2>{1, 2});
  CHECK(L[3].padding == std::array<int, 2>{0, 1});
  CHECK(L[3].bias == false);
  CHECK(L[4].type == LayerType::avgpool2d);
  CHECK(L[4].stride == std::array<int, 2>{1, 1});
  CHECK(L[4].padding == std::array<int, 2>{1, 1});
  CHECK(L[5].type == LayerType::flatten);
  CHECK(L[6].type == LayerType::dropout);
  CHECK(L[6].p == 0.5);
  CHECK(L[7].type == LayerType::linear);
  CHECK(L[7].name == "fc");
  CHECK(L[7].out_features == 10);
  CHECK(L[7].bias == false);
}

// Each case: a broken config and the pieces its message must contain (always the key path).
struct BadCase {
  json raw;
  std::vector<std::string> parts;
};

std::vector<BadCase> bad_cases() {
  const json full = full_config(), layers = layers_config(), syn = synthetic_config();
  json no_dataset = minimal_config();
  no_dataset["data"].erase("dataset");
  json no_arch = minimal_config();
  no_arch["model"].erase("arch");
  json no_hidden = full;
  no_hidden["model"].erase("hidden");
  json no_data = minimal_config();
  no_data.erase("data");
  json no_layers = layers;
  no_layers["model"].erase("layers");
  json top_typo = minimal_config();
  top_typo["lr_shedule"] = json::object();
  json nested_typo = full;
  nested_typo["optimizer"]["momentun"] = 0.9;
  json deep_typo = syn;
  deep_typo["data"]["synthetic"]["trian"] = 5;
  json layer_typo = layers;
  layer_typo["model"]["layers"][7]["out_feature"] = 3;
  json layer_type_typo = layers;
  layer_type_typo["model"]["layers"][1] = {{"typ", "relu"}};
  json no_layer_type = layers;
  no_layer_type["model"]["layers"][1] = json::object();
  json linear_no_out = layers;
  linear_no_out["model"]["layers"][7].erase("out_features");
  json conv_no_kernel = layers;
  conv_no_kernel["model"]["layers"][0].erase("kernel");
  json dropout_no_p = layers;
  dropout_no_p["model"]["layers"][6].erase("p");

  return {
      // top level
      {json::array(), {"the config", "expected an object"}},
      {with(minimal_config(), "name=\"\""), {"name", "not a valid run name"}},
      {with(minimal_config(), "name=a/b"), {"name", "a/b"}},
      {with(minimal_config(), "name=3"), {"name", "expected a string", "3"}},
      {with(minimal_config(), "seed=-1"), {"seed", "-1", ">= 0"}},
      {with(minimal_config(), "seed=1.5"), {"seed", "expected an integer"}},
      {with(minimal_config(), "threads=-2"), {"threads", "-2", ">= 0"}},
      {with(minimal_config(), "device=tpu"), {"device", "\"tpu\"", "\"cpu\", \"cuda\""}},
      {with(minimal_config(), "device=cdua"), {"device", "did you mean \"cuda\""}},
      {with(minimal_config(), "backend=mkl"), {"backend", "\"mkl\"", "\"onednn\", \"native\""}},
      {with(minimal_config(), "train=5"), {"train: expected an object", "an integer (5)"}},
      {top_typo, {"unknown key \"lr_shedule\"", "did you mean \"lr_schedule\""}},
      {with(minimal_config(), "pruning=5"), {"pruning", "expected an object"}},
      // data
      {no_data, {"missing required key \"data\""}},
      {no_dataset, {"missing required key \"data.dataset\""}},
      {with(minimal_config(), "data.dataset=cifar10"), {"data.dataset", "cifar10", "\"mnist\", \"fashion_mnist\", \"synthetic\""}},
      {with(minimal_config(), "data.dataset=fashion-mnist"), {"data.dataset", "did you mean \"fashion_mnist\""}},
      {with(minimal_config(), "data.dir=5"), {"data.dir", "expected a string"}},
      {with(minimal_config(), "data.validation=-1"), {"data.validation", "-1", ">= 0"}},
      {with(minimal_config(), "data.validation=60000"), {"data.validation", "60000", "no training samples"}},
      {with(minimal_config(), "data.normalize=\"yes\""), {"data.normalize", "expected a boolean"}},
      {with(minimal_config(), "data.synthetic.train=10"), {"data.synthetic", "only allowed", "\"mnist\""}},
      {with(syn, "data.synthetic.train=0"), {"data.synthetic.train", "0", ">= 1"}},
      {with(syn, "data.synthetic.test=0"), {"data.synthetic.test", ">= 1"}},
      {with(syn, "data.synthetic.classes=1"), {"data.synthetic.classes", "1", ">= 2"}},
      {with(syn, "data.synthetic.channels=0"), {"data.synthetic.channels", ">= 1"}},
      {with(syn, "data.synthetic.height=0"), {"data.synthetic.height", ">= 1"}},
      {with(syn, "data.synthetic.width=-3"), {"data.synthetic.width", "-3"}},
      {with(syn, "data.validation=100"), {"data.validation", "100", "data.synthetic.train = 100"}},
      {deep_typo, {"unknown key \"data.synthetic.trian\"", "did you mean \"train\""}},
      // model
      {no_arch, {"missing required key \"model.arch\""}},
      {with(minimal_config(), "model.arch=resnet"), {"model.arch", "resnet", "\"lenet300\""}},
      {no_hidden, {"missing required key \"model.hidden\"", "mlp"}},
      {with(full, "model.hidden=300"), {"model.hidden", "expected an array"}},
      {with(full, "model.hidden=[300, 0]"), {"model.hidden[1]", "0", ">= 1"}},
      {with(full, "model.hidden=[300, \"a\"]"), {"model.hidden[1]", "expected an integer"}},
      {with(minimal_config(), "model.hidden=[10]"), {"model.hidden", "only allowed", "\"lenet5\""}},
      {with(full, "model.init=xavier"), {"model.init", "xavier", "\"glorot_uniform\""}},
      {with(full, "model.dropout=1"), {"model.dropout", "1", "[0, 1)"}},
      {with(full, "model.dropout=-0.1"), {"model.dropout", "-0.1", "[0, 1)"}},
      {no_layers, {"missing required key \"model.layers\"", "layers"}},
      {with(layers, "model.layers=[]"), {"model.layers", "non-empty array"}},
      {with(full, "model.layers=[{\"type\": \"relu\"}]"), {"model.layers", "only allowed", "\"mlp\""}},
      // layers
      {with(layers, "model.layers.1=5"), {"model.layers[1]", "expected a layer object"}},
      {no_layer_type, {"missing required key \"model.layers[1].type\""}},
      {layer_type_typo, {"unknown key \"model.layers[1].typ\"", "did you mean \"type\""}},
      {with(layers, "model.layers.1.type=conv3d"), {"model.layers[1].type", "conv3d", "\"conv2d\""}},
      {linear_no_out, {"missing required key \"model.layers[7].out_features\"", "linear"}},
      {with(layers, "model.layers.7.out_features=0"), {"model.layers[7].out_features", ">= 1"}},
      {with(layers, "model.layers.7.bias=1"), {"model.layers[7].bias", "expected a boolean"}},
      {layer_typo, {"unknown key \"model.layers[7].out_feature\"", "did you mean \"out_features\""}},
      {with(layers, "model.layers.1.bias=true"), {"model.layers[1].bias", "not used by layer type \"relu\""}},
      {with(layers, "model.layers.0.out_channels=0"), {"model.layers[0].out_channels", ">= 1"}},
      {conv_no_kernel, {"missing required key \"model.layers[0].kernel\""}},
      {with(layers, "model.layers.0.kernel=0"), {"model.layers[0].kernel", "0", ">= 1"}},
      {with(layers, "model.layers.0.kernel=[3]"), {"model.layers[0].kernel", "[h, w] pair"}},
      {with(layers, "model.layers.0.kernel=[3, 0]"), {"model.layers[0].kernel[1]", ">= 1"}},
      {with(layers, "model.layers.0.stride=0"), {"model.layers[0].stride", ">= 1"}},
      {with(layers, "model.layers.0.padding=-1"), {"model.layers[0].padding", "-1", ">= 0"}},
      {with(layers, "model.layers.0.padding=\"same\""), {"model.layers[0].padding", "pair"}},
      {with(layers, "model.layers.2.padding=2"), {"model.layers[2].padding", "half the kernel"}},
      {with(layers, "model.layers.2.out_channels=3"), {"model.layers[2].out_channels", "maxpool2d"}},
      {with(layers, "model.layers.6.p=1"), {"model.layers[6].p", "1", "[0, 1)"}},
      {dropout_no_p, {"missing required key \"model.layers[6].p\""}},
      {with(layers, "model.layers.7.name=conv1"), {"model.layers[7].name", "conv1", "unique"}},
      {with(layers, "model.layers.7.name=fc.1"), {"model.layers[7].name", "fc.1", "not a valid name"}},
      {with(layers, "model.layers.7.name=7"), {"model.layers[7].name", "expected a string"}},
      // train
      {with(minimal_config(), "train.epochs=0"), {"train.epochs", "0", ">= 1"}},
      {with(minimal_config(), "train.epochs=2.5"), {"train.epochs", "expected an integer", "2.5"}},
      {with(minimal_config(), "train.epochs=3000000000"), {"train.epochs", "3000000000", "at most"}},
      {with(minimal_config(), "train.batch_size=0"), {"train.batch_size", ">= 1"}},
      {with(minimal_config(), "train.eval_batch_size=-5"), {"train.eval_batch_size", "-5"}},
      {patched(minimal_config(), "/train/label_smoothing", 0.1), {"unknown key \"train.label_smoothing\""}},
      // optimizer
      {with(full, "optimizer.type=rmsprop"), {"optimizer.type", "rmsprop", "\"sgd\", \"adam\", \"adamw\""}},
      {with(full, "optimizer.lr=0"), {"optimizer.lr", "0", "> 0"}},
      {with(full, "optimizer.lr=fast"), {"optimizer.lr", "expected a number", "fast"}},
      {with(full, "optimizer.momentum=1"), {"optimizer.momentum", "1", "[0, 1)"}},
      {with(full, "optimizer.dampening=1.5"), {"optimizer.dampening", "1.5", "[0, 1)"}},
      {with(full, "optimizer.nesterov=1"), {"optimizer.nesterov", "expected a boolean"}},
      {with(full, "optimizer.momentum=0"), {"optimizer.nesterov", "optimizer.momentum"}},
      {with(full, "optimizer.dampening=0.1"), {"optimizer.nesterov", "optimizer.dampening"}},
      {with(full, "optimizer.weight_decay=-1e-4"), {"optimizer.weight_decay", "-0.0001", ">= 0"}},
      {with(full, "optimizer.beta1=1"), {"optimizer.beta1", "[0, 1)"}},
      {with(full, "optimizer.beta2=-0.5"), {"optimizer.beta2", "-0.5", "[0, 1)"}},
      {with(full, "optimizer.eps=0"), {"optimizer.eps", "> 0"}},
      {nested_typo, {"unknown key \"optimizer.momentun\"", "did you mean \"momentum\""}},
      // lr_schedule
      {with(full, "lr_schedule.type=linear"), {"lr_schedule.type", "linear", "\"constant\", \"step\", \"cosine\""}},
      {with(full, "lr_schedule.warmup_epochs=-1"), {"lr_schedule.warmup_epochs", ">= 0"}},
      {with(full, "lr_schedule.warmup_epochs=20"), {"lr_schedule.warmup_epochs", "20", "train.epochs = 20"}},
      {with(full, "lr_schedule.step_size=0"), {"lr_schedule.step_size", ">= 1"}},
      {with(full, "lr_schedule.gamma=0"), {"lr_schedule.gamma", "0", "(0, 1]"}},
      {with(full, "lr_schedule.gamma=1.5"), {"lr_schedule.gamma", "1.5", "(0, 1]"}},
      {with(full, "lr_schedule.min_lr=-1"), {"lr_schedule.min_lr", "-1", ">= 0"}},
      // output
      {with(full, "output.dir=[1]"), {"output.dir", "expected a string"}},
      {with(full, "output.checkpoint_every=-1"), {"output.checkpoint_every", "-1", ">= 0"}},
  };
}

TEST_CASE("config: every validation rule names the key path") {
  for (const auto& bad : bad_cases()) {
    CAPTURE(bad.raw.dump());
    const std::string message = error_of([&] { parse_config(bad.raw, ""); });
    check_contains(message, bad.parts);
  }
}

TEST_CASE("config: errors from a file are prefixed with its name") {
  TempDir dir;
  const std::string path = dir.file("bad.json");
  for (const auto& bad : bad_cases()) {
    write_text(path, bad.raw.dump(2));
    const std::string message = error_of([&] { load_config(path, {}); });
    CHECK_MESSAGE(message.rfind(path + ": ", 0) == 0, message);
    check_contains(message, bad.parts);
  }
  SUBCASE("file problems") {
    const std::string missing = dir.file("missing.json");
    check_contains(error_of([&] { load_config(missing, {}); }), {missing + ": ", "cannot open"});
    write_text(path, "{\"data\": {\"dataset\": \"mnist\"},\n \"model\": {\"arch\": }\n}");
    check_contains(error_of([&] { load_config(path, {}); }), {path + ": invalid JSON", "line 2"});
    write_text(path, R"({"data": {"dataset": "mnist"}, "model": {"arch": "mlp", "hidden": [1], "arch": "lenet5"}})");
    check_contains(error_of([&] { load_config(path, {}); }), {path + ": duplicate key \"model.arch\""});
    write_text(path, R"({"data": {"dataset": "synthetic"}, "model": {"arch": "layers", "layers": [{"type": "relu"}, {"type": "relu", "type": "flatten"}]}})");
    check_contains(error_of([&] { load_config(path, {}); }), {"duplicate key \"model.layers[1].type\""});
  }
}

TEST_CASE("config: overrides") {
  json raw = full_config();
  SUBCASE("numbers, bools, strings, arrays") {
    apply_override(raw, "optimizer.lr=0.5");
    apply_override(raw, "train.epochs=3");
    apply_override(raw, "lr_schedule.warmup_epochs=0");
    apply_override(raw, "optimizer.nesterov=false");
    apply_override(raw, "optimizer.type=adam");               // bare word: a string
    apply_override(raw, "name=\"quoted name\"");              // quoted JSON string
    apply_override(raw, "output.dir=runs/a=b");               // split at the first '='
    apply_override(raw, "model.hidden=[50, 20, 10]");
    apply_override(raw, " seed = 7 ");                         // surrounding spaces ignored
    const Config c = parse_config(raw, "x.json");
    CHECK(c.optimizer.lr == 0.5);
    CHECK(c.train.epochs == 3);
    CHECK(c.optimizer.nesterov == false);
    CHECK(c.optimizer.type == OptimizerType::adam);
    CHECK(c.name == "quoted name");
    CHECK(c.output.dir == "runs/a=b");
    CHECK(c.model.hidden == std::vector<int>{50, 20, 10});
    CHECK(c.seed == 7);
  }
  SUBCASE("missing sections are created") {
    json s = json::parse(R"({"data": {"dataset": "synthetic"}, "model": {"arch": "lenet300"}})");
    apply_override(s, "data.synthetic.classes=3");
    apply_override(s, "output.checkpoint_every=0");
    const Config c = parse_config(s, "");
    CHECK(c.data.synthetic.classes == 3);
    CHECK(c.output.checkpoint_every == 0);
  }
  SUBCASE("layers by index, both spellings") {
    json l = layers_config();
    apply_override(l, "model.layers.7.out_features=32");
    apply_override(l, "model.layers[0].kernel=[3,3]");
    apply_override(l, "model.layers[6]={\"type\": \"dropout\", \"p\": 0.1}");
    const Config c = parse_config(l, "");
    CHECK(c.model.layers[7].out_features == 32);
    CHECK(c.model.layers[0].kernel == std::array<int, 2>{3, 3});
    CHECK(c.model.layers[6].p == 0.1);
    check_contains(error_of([&] { apply_override(l, "model.layers.8.p=0.1"); }), {"model.layers", "no element 8", "8 elements"});
    check_contains(error_of([&] { apply_override(l, "model.layers.x.p=0.1"); }), {"model.layers", "expected an index"});
    check_contains(error_of([&] { apply_override(l, "model.layers.0.kernal=3"); }),
                   {"unknown key \"model.layers[0].kernal\"", "did you mean \"kernel\""});
    json m = full_config();
    check_contains(error_of([&] { apply_override(m, "model.layers.0.p=0.1"); }), {"model.layers", "no element 0"});
  }
  SUBCASE("every pruning key can be set; an unknown one is refused by the override itself") {
    apply_override(raw, "pruning.schedule.epoch=2");
    const Config c = parse_config(raw, "");
    CHECK(c.pruning->schedule.epoch == 2);
    check_contains(error_of([&] { parse_config(with(raw, "pruning.target=1.5"), "x.json"); }),
                   {"x.json: ", "pruning.target", "[0, 1)"});
    check_contains(error_of([&] { apply_override(raw, "pruning.new.deep.key=[1,2]"); }), {"unknown key \"pruning.new\""});
    CHECK(!raw["pruning"].contains("new"));
    check_contains(error_of([&] { apply_override(raw, "pruning.schedule.epoc=3"); }),
                   {"unknown key \"pruning.schedule.epoc\"", "did you mean \"epoch\""});
    json m = minimal_config();
    apply_override(m, "pruning.method=one_shot");
    apply_override(m, "pruning.target=0.5");
    CHECK(holds(to_json(parse_config(m, ""))["pruning"], json{{"method", "one_shot"}, {"target", 0.5}}));
  }
  SUBCASE("unknown paths and malformed overrides") {
    check_contains(error_of([&] { apply_override(raw, "optimizer.momentun=0.5"); }),
                   {"optimizer.momentun=0.5", "unknown key \"optimizer.momentun\"", "did you mean \"momentum\""});
    check_contains(error_of([&] { apply_override(raw, "optimiser.lr=0.5"); }), {"unknown key \"optimiser\"", "\"optimizer\""});
    check_contains(error_of([&] { apply_override(raw, "data.synthetic.depth=3"); }), {"unknown key \"data.synthetic.depth\""});
    check_contains(error_of([&] { apply_override(raw, "optimizer.lr.value=1"); }), {"unknown key \"optimizer.lr.value\"", "is a value"});
    check_contains(error_of([&] { apply_override(raw, "optimizer.lr"); }), {"optimizer.lr", "expected key=value"});
    check_contains(error_of([&] { apply_override(raw, "=5"); }), {"empty key"});
    check_contains(error_of([&] { apply_override(raw, "optimizer..lr=5"); }), {"empty segment"});
    json bad = minimal_config();
    bad["train"] = 5;
    check_contains(error_of([&] { apply_override(bad, "train.epochs=5"); }), {"train.epochs", "not an object"});
    CHECK(raw == full_config());  // failed overrides change nothing
  }
  SUBCASE("a wrongly typed value fails validation, naming the key") {
    apply_override(raw, "train.epochs=ten");
    check_contains(error_of([&] { parse_config(raw, "x.json"); }), {"x.json: train.epochs: expected an integer", "\"ten\""});
  }
  SUBCASE("load_config applies overrides in order and prefixes their errors") {
    TempDir dir;
    const std::string path = dir.file("exp.json");
    write_text(path, full_config().dump());
    const Config c = load_config(path, {"optimizer.lr=0.2", "optimizer.lr=0.3", "train.batch_size=32"});
    CHECK(c.optimizer.lr == 0.3);
    CHECK(c.train.batch_size == 32);
    CHECK(c.name == "mnist_mlp");
    check_contains(error_of([&] { load_config(path, {"optimizer.momentun=0.5"}); }),
                   {path + ": override \"optimizer.momentun=0.5\": unknown key \"optimizer.momentun\""});
    check_contains(error_of([&] { load_config(path, {"optimizer.momentum=2"}); }),
                   {path + ": optimizer.momentum = 2 is out of range"});
  }
}

TEST_CASE("config: round trip parse(to_json(c)) == c") {
  for (const json& raw : {full_config(), minimal_config(), synthetic_config(), layers_config(),
                          with(with(full_config(), "optimizer.lr=0.1234567890123"), "optimizer.eps=3e-9")}) {
    const Config c = parse_config(raw, "configs/some_name.json");
    const json j = to_json(c);
    const Config again = parse_config(j, "another_file.json");  // the name is in j, not from the file
    CHECK(to_json(again) == j);
    CHECK(again == c);

    // Through a file, as the run folder stores it.
    TempDir dir;
    const std::string path = dir.file("config.json");
    write_file_atomic(path, j.dump(2) + "\n");
    CHECK(to_json(load_config(path, {})) == j);
  }
  CHECK(parse_config(full_config(), "") != parse_config(minimal_config(), ""));
}

TEST_CASE("config: the resolved pruning block of every method reads back to the same config") {
  const std::pair<int, const char*> cases[] = {
      {4, R"({"method": "one_shot", "target": 0.5, "finetune": {"epochs": 2}})"},
      {4, R"({"method": "one_shot", "granularity": {"type": "nm", "n": 1, "m": 4}})"},
      {4, R"({"method": "one_shot", "target": 0.5, "granularity": {"type": "block", "block": [2, 4]},
              "distribution": {"type": "uniform"}, "l1": {"lambda": 1e-4}})"},
      {4, R"({"method": "iterative", "threshold": 0.01, "schedule": {"rewind": "epoch", "rewind_epoch": 1}})"},
      {4, R"({"method": "gradual", "target": 0.9, "schedule": {"end_epoch": 3, "every_steps": 10}})"},
      {4, R"({"method": "admm", "target": 0.5, "schedule": {"end_epoch": 2}, "admm": {"rho": 0.01}})"},
      {4, R"({"method": "static", "target": 0.8, "distill": {"teacher": "runs/teacher", "alpha": 0.5}})"},
      {1, R"({"method": "set", "target": 0.8})"},
      {1, R"({"method": "rigl", "target": 0.8})"},
      {4, R"({"method": "random", "target": 0.5})"}};
  for (const auto& [epochs, pruning] : cases) {
    CAPTURE(pruning);
    json raw = synthetic_config();
    raw["train"]["epochs"] = epochs;
    raw["pruning"] = json::parse(pruning);
    const Config c = parse_config(raw, "");
    CHECK(parse_config(to_json(c), "") == c);
    CHECK(holds(to_json(c)["pruning"], raw["pruning"]));
  }
}

TEST_CASE("config: to_string spellings and describe") {
  CHECK(std::string(to_string(DatasetKind::fashion_mnist)) == "fashion_mnist");
  CHECK(std::string(to_string(Init::glorot_normal)) == "glorot_normal");
  CHECK(std::string(to_string(LayerType::maxpool2d)) == "maxpool2d");
  CHECK(std::string(to_string(OptimizerType::adamw)) == "adamw");
  const std::string d = describe(parse_config(full_config(), ""));
  check_contains(d, {"mnist_mlp", "mlp[300,100]", "mnist", "sgd", "lr=0.1", "20 epochs", "seed 42", "cuda/native", "pruning"});
  CHECK(d.find('\n') == std::string::npos);
  check_contains(describe(parse_config(layers_config(), "l.json")), {"l: layers(8 layers) on fashion_mnist"});
}

TEST_CASE("user JSON: depth, number range and location are checked while parsing") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::string e = error_of([&] { parse_user_json(deep, "deep.json"); });
  CHECK(e.find("deep.json") != std::string::npos);
  CHECK(e.find("nested deeper than 64") != std::string::npos);
  CHECK_THROWS_AS(parse_user_json("{\"a\": " + deep + "}", "x"), JsonLimitError);
  CHECK_NOTHROW(parse_user_json(std::string(64, '[') + std::string(64, ']'), "x"));

  e = error_of([] { parse_user_json("{\"optimizer\": {\n  \"lr\": 1e400}}", "c.json"); });
  CHECK(e.find("c.json") != std::string::npos);
  CHECK(e.find("line 2") != std::string::npos);
  CHECK(e.find("optimizer.lr") != std::string::npos);
  CHECK(e.find("out of range") != std::string::npos);
  CHECK(error_of([] { parse_user_json("{\"a\": 1, \"a\": 2}", "c.json"); }).find("duplicate key \"a\"") != std::string::npos);
  CHECK(error_of([] { parse_user_json("{\"a\": [1, }", "c.json"); }).find("invalid JSON at line 1") != std::string::npos);
  CHECK(parse_user_ordered_json("{\"b\": 1, \"a\": 2}", "x").begin().key() == "b");
}

TEST_CASE("config: deep or out-of-range override values are errors, not strings") {
  json raw = json::parse(R"({"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [8]}})");
  const std::string deep = std::string(1000, '[') + std::string(1000, ']');
  std::string e = error_of([&] { apply_override(raw, "model.hidden=" + deep); });
  CHECK(e.find("model.hidden") != std::string::npos);
  CHECK(e.find("nested deeper") != std::string::npos);
  CHECK(error_of([&] { apply_override(raw, "optimizer.lr=1e400"); }).find("out of range") != std::string::npos);
  apply_override(raw, "name=not json");
  CHECK(raw["name"] == "not json");
}

TEST_CASE("messages cap what they echo and print numbers compactly") {
  CHECK(st::excerpt("short") == "short");
  const std::string cut = st::excerpt(std::string(1000000, 'x'));
  CHECK(cut.size() < 120);
  CHECK(cut.find("(1000000 bytes)") != std::string::npos);
  CHECK(number_text(1e308) == "1e+308");
  CHECK(number_text(0.05) == "0.05");
  CHECK(number_text(60000) == "60000");
  json raw = json::parse(R"({"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [8]}})");
  raw["data"]["dataset"] = std::string(1000000, 'x');
  CHECK(error_of([&] { parse_config(raw); }).size() < 400);
}

TEST_CASE("config files: a directory is named as one") {
  TempDir dir;
  CHECK(error_of([&] { load_config(dir.path.string()); }).find("is a directory") != std::string::npos);
}

TEST_CASE("memory estimate: a model too big for memory names its key and the bytes") {
  json raw = json::parse(R"({"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [1000000, 1000000]}})");
  const Config big = parse_config(raw);
  CHECK(estimate_memory(big).parameters > 1e12);
  const std::string e = error_of([&] { check_memory(big, 64e9); });
  CHECK(e.find("model.hidden") != std::string::npos);
  CHECK(e.find("bytes") != std::string::npos);
  raw["model"]["hidden"] = {64};
  CHECK_NOTHROW(check_memory(parse_config(raw), 64e9));
  raw["train"] = {{"batch_size", 2000000000}};
  CHECK(error_of([&] { check_memory(parse_config(raw), 64e9); }).find("train.batch_size") != std::string::npos);
  CHECK(available_memory() > 0);
}

TEST_CASE("memory estimate: CSR Linear layers on the cpu count their packed inputs") {
  // LeNet-300 on synthetic 28×28 data, batch 50 (two 32-sample tiles): the three layers' inputs
  // (784 + 300 + 100 floats per sample) once more, over 64 samples.
  json raw = json::parse(R"({"data": {"dataset": "synthetic"}, "model": {"arch": "lenet300"},
                             "train": {"batch_size": 50, "eval_batch_size": 50}})");
  const MemoryEstimate dense = estimate_memory(parse_config(raw));
  raw["pruning"] = json::parse(R"({"method": "gradual", "target": 0.9, "schedule": {"end_epoch": 1}})");
  const MemoryEstimate pruned = estimate_memory(parse_config(raw));
  CHECK(pruned.activation_bytes - dense.activation_bytes == doctest::Approx((784 + 300 + 100) * 64 * 4.0));
  // The feature-major path of very wide layers keeps no packed input: nothing added there.
  raw = json::parse(R"({"data": {"dataset": "synthetic"}, "model": {"arch": "mlp", "hidden": [70000]}})");
  const MemoryEstimate wide_dense = estimate_memory(parse_config(raw));
  raw["pruning"] = json::parse(R"({"method": "set", "target": 0.99, "distribution": {"type": "er"}})");
  CHECK(estimate_memory(parse_config(raw)).activation_bytes == doctest::Approx(wide_dense.activation_bytes));
}

TEST_CASE("memory estimate: a sparse start counts the nonzeros, not the dense matrix") {
  // Liu et al.'s SET-MLP scale: 784-333333x3-10 (about 2.2e11 weights dense).
  json raw = json::parse(R"({"data": {"dataset": "synthetic"},
                             "model": {"arch": "mlp", "hidden": [333333, 333333, 333333]},
                             "pruning": {"method": "set", "target": 0.9999, "distribution": {"type": "er"}}})");
  const MemoryEstimate m = estimate_memory(parse_config(raw));
  CHECK(m.dense_parameter_bytes > 1e12);
  CHECK(m.parameter_bytes < 1e9);
  CHECK(m.parameter_bytes > (1 - 0.9999) * m.weights * 32);  // 28 B per nonzero + momentum
  CHECK_NOTHROW(check_memory(parse_config(raw), 24e9));
  // Pruning from dense allocates the dense matrix first: refused, naming the key.
  raw["pruning"] = json::parse(R"({"method": "gradual", "target": 0.9999, "schedule": {"end_epoch": 1}})");
  const std::string e = error_of([&] { check_memory(parse_config(raw), 24e9); });
  CHECK(e.find("model.hidden") != std::string::npos);
  CHECK(e.find("pruning.method \"gradual\" prunes a dense model") != std::string::npos);
  // A criterion that needs dense weights (magnitude on the initial weights) starts dense too.
  raw["pruning"] = json::parse(R"({"method": "static", "target": 0.9999, "criterion": {"type": "magnitude"}})");
  CHECK(error_of([&] { check_memory(parse_config(raw), 24e9); }).find("criterion \"random\"") != std::string::npos);
  // RigL regrows sparse Linear layers in the sparse form (a gradient panel and its candidates)...
  raw["pruning"] = json::parse(R"({"method": "rigl", "target": 0.9999, "distribution": {"type": "er"}})");
  const MemoryEstimate r = estimate_memory(parse_config(raw));
  CHECK(r.parameter_bytes < 1e9);
  CHECK(r.parameter_bytes > m.parameter_bytes);  // plus the panel and the top-k candidates
  CHECK_NOTHROW(check_memory(parse_config(raw), 24e9));
  // ...but its update steps run densely on CUDA: refused there, saying why.
  raw["device"] = "cuda";
  CHECK(error_of([&] { check_memory(parse_config(raw), 24e9); }).find("makes its layers dense at its updates") != std::string::npos);
}
