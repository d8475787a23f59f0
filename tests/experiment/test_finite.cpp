// tests/experiment/test_finite.cpp — experiment/finite.h: NaN and ±Inf are found wherever they are,
// a checkpoint holding one is refused naming the tensor (weights, CSR values, optimizer state), and a
// run whose parameters go non-finite stops at that step naming the parameter.
#include <doctest/doctest.h>

#include <cfloat>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "core/csr_weight.h"
#include "experiment/checkpoint.h"
#include "experiment/config.h"
#include "experiment/finite.h"
#include "experiment/safetensors.h"
#include "experiment/setup.h"
#include "experiment/trainer.h"
#include "kernels/elementwise.h"
#include "experiment_test_util.h"

using namespace st;
using namespace st::experiment;
namespace fs = std::filesystem;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

Config config() { return parse_config(test::synthetic_config("fin", "mlp", nullptr), "test"); }

// Writes `value` at element `index` of tensor `name` of the checkpoint at `path`.
void poke(const std::string& path, const std::string& name, int64_t index, float value) {
  SafetensorsFile f = read_safetensors(path);
  bool found = false;
  for (auto& t : f.tensors)
    if (t.name == name) {
      std::memcpy(t.bytes.data() + index * sizeof(float), &value, sizeof value);
      found = true;
    }
  REQUIRE(found);
  write_safetensors(path, f.tensors, f.metadata);
}

}  // namespace

TEST_CASE("finite: the first NaN or Inf is found at any position, and only those") {
  std::vector<float> v(1000, 0.5f);
  v[3] = FLT_MAX;
  v[4] = -FLT_MAX;
  v[5] = FLT_MIN / 4;  // subnormal
  v[6] = -0.0f;
  CHECK(kernels::first_non_finite(0, v.data()) == -1);
  CHECK(kernels::first_non_finite(static_cast<int64_t>(v.size()), v.data()) == -1);
  for (float bad : {kNaN, -kNaN, kInf, -kInf})
    for (int64_t at : {0, 1, 15, 16, 17, 998, 999}) {
      CAPTURE(bad);
      CAPTURE(at);
      std::vector<float> w = v;
      w[static_cast<size_t>(at)] = bad;
      w[999] = bad;  // the first one counts
      CHECK(kernels::first_non_finite(static_cast<int64_t>(w.size()), w.data()) == at);
    }
}

TEST_CASE("finite: a non-finite parameter is named, with its gradient; a CSR layer's nonzeros are checked") {
  Parameter dense("fc1.weight", Tensor({4, 5}), true);
  dense.var.value().fill_(0.25f);
  check_parameters_finite({&dense}, "after step 1");
  CHECK(parameters_finite({&dense}));
  dense.var.value().f32()[7] = -kInf;
  CHECK_FALSE(parameters_finite({&dense}));
  CHECK_THROWS_WITH(check_parameters_finite({&dense}, "after epoch 2, step 3"),
                    "training diverged: parameter \"fc1.weight\" is -inf at index 7 after epoch 2, step 3 "
                    "(lower optimizer.lr, or add lr_schedule.warmup_epochs)");
  dense.var.grad() = Tensor({4, 5});
  dense.var.grad().fill_(kNaN);
  CHECK_THROWS_WITH(check_parameters_finite({&dense}, "x"), doctest::Contains("(its gradient is non-finite too)"));

  // On the cpu a CSR layer's live values are its nonzeros; its dense weight may be stale.
  Parameter sparse("fc2.weight", Tensor({4, 5}), true);
  sparse.var.value().fill_(1.0f);
  sparse.mask = Tensor({4, 5}, DType::u8);
  sparse.mask.zero_();
  for (int i : {1, 8, 13}) sparse.mask.u8()[i] = 1;
  sparse.csr = make_csr_weight(sparse.var.value(), sparse.mask_data());
  check_parameters_finite({&sparse}, "x");
  sparse.var.value().fill_(kNaN);  // the stale dense weight is not what a CSR step wrote
  CHECK(parameters_finite({&sparse}));
  sparse.csr->values.value().f32()[2] = kNaN;
  CHECK_FALSE(parameters_finite({&sparse}));
  CHECK_THROWS_WITH(check_parameters_finite({&sparse}, "x"),
                    doctest::Contains("parameter \"fc2.weight\" is nan at nonzero 2"));
}

TEST_CASE("finite: a checkpoint holding NaN or Inf is refused, naming the tensor and the first bad value") {
  const std::string dir = test::fresh_temp_dir("st_fin_", "load");
  RunOptions o = test::quiet(dir + "/run");
  o.stop_after_epochs = 1;
  train(config(), o);
  const std::string good = dir + "/good.safetensors", ckpt = dir + "/run/checkpoint.safetensors";
  fs::copy_file(ckpt, good);
  const Config c = config();
  auto model = [&] { return models::build_model(model_spec(c), {1, 8, 8}, 4, c.seed); };

  poke(ckpt, "fc2.bias", 3, kNaN);
  auto m = model();
  CHECK_THROWS_WITH(load_checkpoint(ckpt, *m, nullptr),
                    doctest::Contains("checkpoint.safetensors: tensor \"fc2.bias\" holds a non-finite value (nan at index 3)"));
  // --init-from refuses it before the new run's folder exists.
  RunOptions init = test::quiet(dir + "/init");
  init.init_from = ckpt;
  CHECK_THROWS_WITH(train(config(), init), doctest::Contains("\"fc2.bias\" holds a non-finite value"));
  CHECK_FALSE(fs::exists(dir + "/init"));

  // Optimizer state: a resume would carry it into the weights at the first step.
  fs::copy_file(good, ckpt, fs::copy_options::overwrite_existing);
  poke(ckpt, "optimizer.fc1.weight.momentum_buffer", 10, -kInf);
  m = model();
  load_checkpoint(ckpt, *m, nullptr);  // the weights alone are fine
  Optimizer opt(m->parameters(), optimizer_options(c));
  CHECK_THROWS_WITH(load_checkpoint(ckpt, *m, &opt),
                    doctest::Contains("\"optimizer.fc1.weight.momentum_buffer\" holds a non-finite value (-inf at index 10)"));
  CHECK_THROWS_WITH(resume(dir + "/run", test::quiet("")), doctest::Contains("momentum_buffer"));

  // A CSR-only file: its values are the weights.
  SafetensorsFile f = read_safetensors(good);
  std::vector<NamedTensor> csr_only;
  for (const auto& t : f.tensors) {
    if (t.name != "fc1.weight") {
      csr_only.push_back(t);
      continue;
    }
    const int64_t rows = t.shape[0];
    NamedTensor row_ptr{"fc1.weight.csr.row_ptr", "I32", {rows + 1}, {}};
    NamedTensor col_idx{"fc1.weight.csr.col_idx", "I32", {1}, std::vector<uint8_t>(4, 0)};
    NamedTensor values{"fc1.weight.csr.values", "F32", {1}, std::vector<uint8_t>(4)};
    std::vector<int32_t> ptr(static_cast<size_t>(rows + 1), 1);
    ptr[0] = 0;
    row_ptr.bytes.resize(ptr.size() * 4);
    std::memcpy(row_ptr.bytes.data(), ptr.data(), row_ptr.bytes.size());
    std::memcpy(values.bytes.data(), &kInf, 4);
    csr_only.insert(csr_only.end(), {row_ptr, col_idx, values});
  }
  write_safetensors(ckpt, csr_only, f.metadata);
  m = model();
  CHECK_THROWS_WITH(load_checkpoint(ckpt, *m, nullptr),
                    doctest::Contains("\"fc1.weight.csr.values\" holds a non-finite value (inf at index 0)"));
  fs::remove_all(dir);
}

TEST_CASE("finite: a run stops at the step its parameters go non-finite, even while the loss is finite") {
  const std::string dir = test::fresh_temp_dir("st_fin_", "diverge");
  nlohmann::json raw = test::synthetic_config("fin", "mlp", nullptr);
  // Weight decay this large sends every weight to ±Inf in the first step; the loss of that step was
  // finite, so the loss check alone would only notice a step later, and not say where.
  raw["optimizer"] = {{"type", "sgd"}, {"lr", 1e30}, {"weight_decay", 1e30}};
  std::string message;
  try {
    train(parse_config(raw, "test"), test::quiet(dir + "/run"));
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("training diverged: parameter \"fc1.weight\" is ") == 0);
  CHECK(message.find("inf at index 0 after epoch 1, step 1 ") != std::string::npos);
  fs::remove_all(dir);
}
