// tests/experiment/test_checkpoint_keys.cpp — the names inside a checkpoint: the key helpers give
// the strings checkpoints already written hold, and a run's checkpoint holds every tensor and
// metadata entry under the name the helpers give.
#include <doctest/doctest.h>

#include "experiment/checkpoint_keys.h"
#include "experiment/config.h"
#include "experiment/run_folder.h"
#include "experiment/safetensors.h"
#include "experiment/setup.h"
#include "experiment/trainer.h"
#include "experiment_test_util.h"
#include "models/builder.h"

using namespace st;
using namespace st::experiment;

TEST_CASE("checkpoint keys: the names stay those of checkpoints already written") {
  CHECK(mask_key("fc1.weight") == "mask.fc1.weight");
  CHECK(optimizer_key("fc1.weight.momentum_buffer") == "optimizer.fc1.weight.momentum_buffer");
  const CsrKeys k = csr_keys("conv2.weight");
  CHECK(k.prefix == "conv2.weight.csr.");
  CHECK(k.row_ptr == "conv2.weight.csr.row_ptr");
  CHECK(k.col_idx == "conv2.weight.csr.col_idx");
  CHECK(k.values == "conv2.weight.csr.values");
  CHECK(std::string(kCheckpointFormat) == "sparsetrain-checkpoint-1");
}

TEST_CASE("checkpoint keys: a pruned CSR run's checkpoint holds every tensor under its key") {
  const std::string dir = test::fresh_temp_dir("st_keys_", "run");
  nlohmann::json raw = test::synthetic_config("keys", "mlp", nullptr);
  raw["train"]["epochs"] = 1;
  raw["pruning"] = {{"method", "set"}, {"target", 0.7}};
  raw["sparse"] = {{"threshold", 0.5}};
  const Config config = parse_config(raw, "test");
  train(config, test::quiet(dir + "/run"));
  const SafetensorsFile f = read_safetensors(RunPaths(dir + "/run").checkpoint);
  auto model = models::build_model(model_spec(config), {1, 8, 8}, 4, config.seed);
  // Each weight under exactly one representation's keys: dense (value, and a mask when pruned) or
  // sparse (the CSR arrays, nothing of the dense shape); optimizer state under its key either way.
  int masks = 0, csr = 0;
  for (const Parameter* p : model->parameters()) {
    INFO(p->name);
    CHECK(f.find(optimizer_key(p->name + ".momentum_buffer")) != nullptr);
    const CsrKeys k = csr_keys(p->name);
    if (f.find(k.values) == nullptr) {
      CHECK(f.find(p->name) != nullptr);
      masks += f.find(mask_key(p->name)) != nullptr;
      continue;
    }
    ++csr;
    CHECK(f.find(p->name) == nullptr);
    CHECK(f.find(mask_key(p->name)) == nullptr);
    CHECK(f.find(k.row_ptr) != nullptr);
    CHECK(f.find(k.col_idx) != nullptr);
    CHECK(f.find(optimizer_key(p->name + ".momentum_buffer"))->bytes.size() == f.find(k.values)->bytes.size());
  }
  CHECK(masks + csr >= 2);  // every prunable weight (fc1, fc2) is pruned
  CHECK(csr >= 1);
  for (const char* key : {kFormatKey, kEpochKey, kOptimizerStepsKey, kDropoutRngKey, kConfigKey, kPruningRngKey})
    CHECK_MESSAGE(f.metadata.count(key) == 1, key);
  CHECK(f.metadata.at(kFormatKey) == kCheckpointFormat);
  CHECK(f.metadata.at(kEpochKey) == "1");
  std::filesystem::remove_all(dir);
}
