// tests/pruning/pruning_test_util.h — tiny hand-made models and a fixed batch source.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "models/model.h"
#include "pruning/criterion.h"

namespace st::test {

inline void set_values(Parameter& p, const std::vector<float>& v) {
  REQUIRE(static_cast<int64_t>(v.size()) == p.var.value().numel());
  for (size_t i = 0; i < v.size(); ++i) p.var.value().f32()[i] = v[i];
}

inline std::vector<uint8_t> mask_of(const Parameter& p) {
  if (!p.mask.defined()) return std::vector<uint8_t>(p.var.value().numel(), 1);
  return std::vector<uint8_t>(p.mask.u8(), p.mask.u8() + p.mask.numel());
}

// fc1 (in → hidden) + relu + fc2 (hidden → out), with biases.
inline std::unique_ptr<models::Model> mlp(int in, int hidden, int out) {
  auto m = std::make_unique<models::Model>(Shape{in}, 1);
  m->add(std::make_unique<models::Linear>("fc1", in, hidden, true));
  m->add(std::make_unique<models::ReLU>("relu1"));
  m->add(std::make_unique<models::Linear>("fc2", hidden, out, true));
  return m;
}

// Gives the same batches every pass.
struct FixedBatches : pruning::BatchSource {
  std::vector<Tensor> xs, ys;
  size_t i = 0;
  int passes = 0;
  void begin(int64_t) override { i = 0, ++passes; }
  bool next(Tensor& x, Tensor& y) override {
    if (i >= xs.size()) return false;
    x = xs[i], y = ys[i];
    ++i;
    return true;
  }
};

}  // namespace st::test
