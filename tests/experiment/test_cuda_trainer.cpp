// tests/experiment/test_cuda_trainer.cpp — `"device": "cuda"` end to end on the synthetic dataset
// (under the CPU emulator in the ordinary test run): a 2-epoch run matches the cpu run's metrics and
// weights to float tolerance (MLP and conv net); pruned runs (gradual, RigL, SET, one-shot with
// distillation) whose hooks round-trip through the host and whose layers train in CSR on the
// device match too; a checkpoint written on cuda resumes on the cpu and the other way round; a
// missing device and cuSPARSE without a GPU fail at start-up, touching no run folder.
// Tiny problems (160 samples of 8×8, batch 16): the emulator runs each GPU thread as a fiber.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/test_cuda_util.h"
#include "cuda/cusparse.h"
#include "cuda/runtime.h"
#include "experiment/config.h"
#include "experiment/safetensors.h"
#include "experiment/trainer.h"
#include "experiment/experiment_test_util.h"

using namespace st;
using namespace st::experiment;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using test::metrics;
using test::quiet;

std::string temp_dir(const std::string& tag) { return test::fresh_temp_dir("st_cuda_", tag); }

json base(const char* arch = "mlp") {
  json raw = {
      {"name", "g"},
      {"seed", 3},
      {"threads", 2},
      {"data", {{"dataset", "synthetic"},
                {"validation", 32},
                {"synthetic", {{"train", 192}, {"test", 64}, {"classes", 4}, {"height", 8}, {"width", 8}}}}},
      {"model", {{"arch", arch}}},
      {"train", {{"epochs", 2}, {"batch_size", 16}, {"eval_batch_size", 32}}},
      {"optimizer", {{"type", "sgd"}, {"lr", 0.05}, {"momentum", 0.9}}},
  };
  if (std::string(arch) == "mlp") raw["model"]["hidden"] = {16};
  if (std::string(arch) == "layers")
    raw["model"]["layers"] = json::parse(R"([
      {"type": "conv2d", "out_channels": 4, "kernel": 3, "padding": 1}, {"type": "relu"},
      {"type": "maxpool2d", "kernel": 2}, {"type": "conv2d", "out_channels": 6, "kernel": 3},
      {"type": "relu"}, {"type": "flatten"}, {"type": "linear", "out_features": 4}])");
  return raw;
}

// Same losses to `tol` (relative), accuracies within `flips` samples of 64, same sparsity and
// modes, and every checkpoint tensor close.
void check_same_run(const std::string& a, const std::string& b, double tol = 2e-3, int flips = 2) {
  const auto ma = metrics(a), mb = metrics(b);
  REQUIRE(ma.size() == mb.size());
  for (size_t e = 0; e < ma.size(); ++e) {
    CAPTURE(e);
    for (const char* k : {"train_loss", "val_loss", "test_loss"})
      CHECK(ma[e][k].get<double>() == doctest::Approx(mb[e][k].get<double>()).epsilon(tol));
    CHECK(std::abs(ma[e]["test_accuracy"].get<double>() - mb[e]["test_accuracy"].get<double>()) <=
          flips / 64.0 + 1e-9);
    CHECK(ma[e]["sparsity"] == mb[e]["sparsity"]);
    for (const auto& [name, l] : ma[e]["layers"].items()) CHECK(l["mode"] == mb[e]["layers"][name]["mode"]);
  }
  const SafetensorsFile fa = read_safetensors(a + "/checkpoint.safetensors");
  const SafetensorsFile fb = read_safetensors(b + "/checkpoint.safetensors");
  REQUIRE(fa.tensors.size() == fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    const NamedTensor &ta = fa.tensors[i], &tb = fb.tensors[i];
    CAPTURE(ta.name);
    REQUIRE(ta.name == tb.name);
    REQUIRE(ta.bytes.size() == tb.bytes.size());
    if (ta.dtype != "F32") {
      CHECK(ta.bytes == tb.bytes);  // masks, CSR structure
      continue;
    }
    std::vector<float> va(ta.bytes.size() / 4), vb(va.size());
    std::memcpy(va.data(), ta.bytes.data(), ta.bytes.size());
    std::memcpy(vb.data(), tb.bytes.data(), tb.bytes.size());
    double worst = 0;
    for (size_t j = 0; j < va.size(); ++j)
      worst = std::max(worst, std::abs(double(va[j]) - vb[j]) / std::max(1.0, std::abs(double(vb[j]))));
    CHECK(worst <= 10 * tol);
  }
}

}  // namespace

TEST_CASE("cuda trainer: a 2-epoch run on cuda matches the cpu run (mlp and conv)" *
          doctest::skip(test::no_cuda_device())) {
  for (const char* arch : {"mlp", "layers"}) {
    CAPTURE(arch);
    const std::string dir = temp_dir("same");
    json raw = base(arch);
    TrainResult cpu = train(parse_config(raw, "test"), quiet(dir + "/cpu"));
    raw["device"] = "cuda";
    TrainResult gpu = train(parse_config(raw, "test"), quiet(dir + "/cuda"));
    CHECK(gpu.final_test_accuracy > 0.5);  // it learned
    check_same_run(dir + "/cuda", dir + "/cpu");
    std::ifstream in(dir + "/cuda/summary.json");
    CHECK(json::parse(in)["device"] == "cuda");
    fs::remove_all(dir);
  }
}

TEST_CASE("cuda trainer: pruned runs with CSR layers on the device match the cpu" *
          doctest::skip(test::no_cuda_device())) {
  // Hooks on every kind of point: step-wise (gradual every_steps, RigL: a host round trip with the
  // dense gradient; ADMM and L1 terms every step), epoch end (SET, ADMM), epoch begin (one-shot
  // with distillation from a teacher, a data-dependent criterion that runs the model on the host,
  // iterative with a rewind snapshot).
  const std::string dir = temp_dir("prune");
  train(parse_config(base(), "teacher"), quiet(dir + "/teacher"));
  for (const char* pruning :
       {R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 1, "every_steps": 4}})",
        R"({"method": "rigl", "target": 0.7, "schedule": {"every_steps": 5, "end_epoch": 1}})",
        R"({"method": "set", "target": 0.7})",
        R"({"method": "one_shot", "target": 0.75, "schedule": {"epoch": 1}, "distill": {"temperature": 2, "alpha": 0.5}})",
        R"({"method": "one_shot", "target": 0.6, "schedule": {"epoch": 1}, "criterion": {"type": "taylor", "batches": 2}})",
        R"({"method": "iterative", "target": 0.75, "schedule": {"start_epoch": 1, "rounds": 1, "every": 1, "rewind": "epoch", "rewind_epoch": 0}})",
        R"({"method": "admm", "target": 0.7, "schedule": {"end_epoch": 1}, "l1": {"lambda": 1e-4}})"}) {
    INFO(std::string(pruning));
    json raw = base();
    raw["pruning"] = json::parse(pruning);
    if (raw["pruning"].contains("distill")) raw["pruning"]["distill"]["teacher"] = dir + "/teacher";
    raw["sparse"] = {{"threshold", 0.5}, {"threshold_cuda", 0.5}};
    train(parse_config(raw, "test"), quiet(dir + "/cpu"));
    raw["device"] = "cuda";
    train(parse_config(raw, "test"), quiet(dir + "/cuda"));
    check_same_run(dir + "/cuda", dir + "/cpu");
    int csr = 0;
    const json last = metrics(dir + "/cuda").back();
    for (const auto& [name, l] : last["layers"].items()) csr += l["mode"] == "csr";
    CHECK(csr >= 1);
    fs::remove_all(dir + "/cpu");
    fs::remove_all(dir + "/cuda");
  }
  fs::remove_all(dir);
}

TEST_CASE("cuda trainer: the CSR threshold is per device" * doctest::skip(test::no_cuda_device())) {
  const std::string dir = temp_dir("threshold");
  json raw = base();
  raw["train"]["epochs"] = 1;
  raw["device"] = "cuda";
  raw["pruning"] = json::parse(R"({"method": "static", "target": 0.8})");
  raw["sparse"] = {{"threshold", 0.5}};  // threshold_cuda keeps its default 0.9: stays dense
  train(parse_config(raw, "test"), quiet(dir + "/a"));
  const json a = metrics(dir + "/a")[0];
  for (const auto& [name, l] : a["layers"].items()) CHECK(l["mode"] == "dense");
  raw["sparse"] = {{"threshold", 0.9}, {"threshold_cuda", 0.5}};
  train(parse_config(raw, "test"), quiet(dir + "/b"));
  const json b = metrics(dir + "/b")[0];
  CHECK(b["layers"]["fc1.weight"]["mode"] == "csr");  // 64 -> 16, well above 0.5
  // "auto" on cuda times the layer on the device (the choice itself is the machine's).
  raw["sparse"] = {{"threshold_cuda", "auto"}};
  train(parse_config(raw, "test"), quiet(dir + "/c"));
  const json c = metrics(dir + "/c")[0];
  bool timed = false;
  for (const auto& sw : c["switches"]) timed = timed || sw["reason"].get<std::string>().rfind("auto", 0) == 0;
  CHECK((timed || c["switches"].empty()));
  fs::remove_all(dir);
}

TEST_CASE("cuda trainer: a checkpoint written on cuda resumes on the cpu, and the other way" *
          doctest::skip(test::no_cuda_device())) {
  const std::string dir = temp_dir("resume");
  json raw = base();
  raw["train"]["epochs"] = 3;
  raw["pruning"] = json::parse(R"({"method": "gradual", "target": 0.8, "schedule": {"start_epoch": 0, "end_epoch": 2}})");
  raw["sparse"] = {{"threshold", 0.5}, {"threshold_cuda", 0.5}};
  const Config c = parse_config(raw, "test");
  train(c, quiet(dir + "/full"));  // cpu, uninterrupted
  for (const auto& [first, second] : {std::pair<Device, Device>{Device::cuda, Device::cpu}, {Device::cpu, Device::cuda}}) {
    INFO(device_name(first) << " then " << device_name(second));
    const std::string part = dir + "/" + device_name(first) + "_" + device_name(second);
    RunOptions stop = quiet(part, first);
    stop.stop_after_epochs = 2;
    train(c, stop);
    resume(part, quiet("", second));
    check_same_run(part, dir + "/full");
  }
  // On the device alone, an interrupted and resumed run ends bitwise identical (invariant 6), with
  // dropout (the device mask's seed comes from the checkpointed stream).
  raw["model"]["dropout"] = 0.2;
  const Config cd = parse_config(raw, "test");
  train(cd, quiet(dir + "/gpu_full", Device::cuda));
  RunOptions stop = quiet(dir + "/gpu_part", Device::cuda);
  stop.stop_after_epochs = 1;
  train(cd, stop);
  resume(dir + "/gpu_part", quiet("", Device::cuda));
  const SafetensorsFile fa = read_safetensors(dir + "/gpu_full/checkpoint.safetensors");
  const SafetensorsFile fb = read_safetensors(dir + "/gpu_part/checkpoint.safetensors");
  REQUIRE(fa.tensors.size() == fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    CAPTURE(fa.tensors[i].name);
    CHECK(fa.tensors[i].bytes == fb.tensors[i].bytes);
  }
  fs::remove_all(dir);
}

TEST_CASE("cuda trainer: no device, or cuSPARSE without a GPU, fails at start-up" *
          doctest::skip(test::no_cuda_device())) {
  const std::string dir = temp_dir("nodevice");
  json raw = base();
  raw["train"]["epochs"] = 2;
  const Config cpu_config = parse_config(raw, "test");
  RunOptions interrupted = quiet(dir + "/run");
  interrupted.stop_after_epochs = 1;  // a run left to resume
  train(cpu_config, interrupted);
  const auto before = fs::last_write_time(dir + "/run/checkpoint.safetensors");
  raw["device"] = "cuda";
  if (cuda::emulated()) {
    cuda::enable_emulation(false);
    try {
      train(parse_config(raw, "test"), quiet(dir + "/new"));
      CHECK(false);
    } catch (const std::exception& e) {
      CHECK(std::string(e.what()).find("asks for device \"cuda\"") != std::string::npos);
      CHECK(std::string(e.what()).find("without the CUDA backend") != std::string::npos);
    }
    CHECK(!fs::exists(dir + "/new"));
    // Resuming an existing run on a missing device leaves its folder as it was.
    CHECK_THROWS_WITH(resume(dir + "/run", quiet("", Device::cuda)), doctest::Contains("asks for device"));
    CHECK(fs::last_write_time(dir + "/run/checkpoint.safetensors") == before);
    CHECK(metrics(dir + "/run").size() == 1);
    cuda::enable_emulation(true);
  }
  if (!cuda::cusparse::available()) {
    raw["sparse"] = {{"impl", "cusparse"}};
    CHECK_THROWS_WITH(train(parse_config(raw, "test"), quiet(dir + "/cus")),
                      doctest::Contains("sparse.impl = \"cusparse\" needs a real GPU"));
    CHECK(!fs::exists(dir + "/cus"));
  }
  raw["sparse"] = {{"impl", "cusprase"}};
  CHECK_THROWS_WITH(parse_config(raw, "test"), doctest::Contains("sparse.impl"));
  fs::remove_all(dir);
}
