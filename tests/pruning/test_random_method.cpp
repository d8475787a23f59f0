// The random method (pruning/methods/random.cpp): prunes once, at schedule.epoch, to the target at
// random; the mask depends on the seed only (not on the weights), and the same seed gives the same mask.
#include <doctest/doctest.h>

#include "core/check.h"
#include "experiment/pruning_keys.h"
#include "pruning/pruner.h"
#include "pruning_test_util.h"

using namespace st;
using namespace st::pruning;
using st::experiment::parse_pruning_config;
using namespace st::test;
using nlohmann::json;

namespace {

constexpr int kEpochs = 4;

// The masks of fc1 and fc2 after epochs 0..2 begin with `seed`; fc1's weights scaled by `scale`.
std::vector<std::vector<uint8_t>> masks_after(uint64_t seed, float scale, double* sparsity_before_epoch_2) {
  auto m = mlp(16, 32, 8);
  Parameter* fc1 = m->parameters()[0];
  for (int64_t i = 0; i < fc1->var.value().numel(); ++i) fc1->var.value().f32()[i] *= scale;
  Pruner p(parse_pruning_config(json::parse(R"({"method": "random", "target": 0.75, "schedule": {"epoch": 2}})"),
                                kEpochs),
           *m, seed);
  p.set_steps_per_epoch(3);
  p.on_start();
  p.on_epoch_begin(0);
  p.on_epoch_begin(1);
  *sparsity_before_epoch_2 = p.sparsity();
  p.on_epoch_begin(2);
  CHECK(p.sparsity() == doctest::Approx(0.75).epsilon(0.01));
  std::vector<std::vector<uint8_t>> out;
  for (const auto& L : p.layers()) out.push_back(mask_of(*L.weight));
  return out;
}

}  // namespace

TEST_CASE("random method: prunes to the target at schedule.epoch, with a mask drawn from the seed alone") {
  double before = -1;
  const auto a = masks_after(7, 1.0f, &before);
  CHECK(before == 0.0);
  CHECK(masks_after(7, 1.0f, &before) == a);   // deterministic
  CHECK(masks_after(7, -3.0f, &before) == a);  // the weights do not matter
  CHECK(masks_after(8, 1.0f, &before) != a);   // the seed does
}

TEST_CASE("random method: config defaults and refusals") {
  const PruningConfig c = parse_pruning_config(json::parse(R"({"method": "random", "target": 0.5})"), kEpochs);
  CHECK(c.method == Method::Random);
  CHECK(c.criterion.type == CriterionType::Random);
  CHECK(c.schedule.epoch == 0);
  CHECK(parse_pruning_config(json::parse(R"({"method": "random", "target": 0.5, "finetune": {"epochs": 2}})"), kEpochs)
            .schedule.epoch == kEpochs);
  CHECK_THROWS_WITH_AS(parse_pruning_config(json::parse(R"({"method": "random", "target": 0.5, "criterion": {"type": "magnitude"}})"),
                                            kEpochs),
                       "pruning.criterion is not used by method \"random\" (it prunes at random)", st::experiment::ConfigError);
  CHECK_THROWS_WITH_AS(parse_pruning_config(json::parse(R"({"method": "random", "threshold": 0.1})"), kEpochs),
                       "pruning.threshold works with methods \"one_shot\" and \"iterative\"; method \"random\" needs pruning.target",
                       st::experiment::ConfigError);
}
