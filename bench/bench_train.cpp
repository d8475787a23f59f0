// bench/bench_train.cpp — `sparsetrain bench train`: training samples/s per model.
// Protocol (mirrors bench/pytorch_train.py): random inputs (N(0,1), 1×28×28) and labels preloaded,
// batch B, SGD lr 0.01 momentum 0.9, `warmup` steps, then `repeats` × `steps` timed steps; report
// the median (and min..max) samples/s.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "core/ops.h"
#include "core/optim.h"
#include "models/builder.h"
#include "pruning/csr_switch.h"
#include "pruning/layers.h"

namespace st::bench {

namespace {

// Uniform random masks: exactly round(sparsity·numel) entries pruned in every prunable layer.
void random_masks(models::Model& model, double sparsity, uint64_t seed) {
  Rng rng(seed);
  for (const auto& L : pruning::prunable_layers(model)) {
    const int64_t n = L.numel();
    const int64_t drop = std::llround(sparsity * n);
    std::vector<int64_t> order(n);
    for (int64_t i = 0; i < n; ++i) order[i] = i;
    for (int64_t i = 0; i < drop; ++i) std::swap(order[i], order[i + rng.below(n - i)]);
    std::vector<uint8_t> mask(n, 1);
    for (int64_t i = 0; i < drop; ++i) mask[order[i]] = 0;
    pruning::set_mask(*L.weight, mask, nullptr);
  }
}

}  // namespace

int bench_train(const TrainBenchOptions& o) {
  omp_set_num_threads(o.threads);
  set_dense_backend(parse_dense_backend(o.backend));
  const int pool = 64;  // distinct batches cycled through
  Rng rng(1);
  Tensor xs({pool, o.batch, 1, 28, 28});
  for (int64_t i = 0; i < xs.numel(); ++i) xs.f32()[i] = rng.normal();
  Tensor ys({pool, o.batch}, DType::i32);
  for (int64_t i = 0; i < ys.numel(); ++i) ys.i32()[i] = static_cast<int32_t>(rng.below(10));
  nlohmann::json out = nlohmann::json::array();
  // Returns the median samples/s; sparsity < 0: the plain dense model.
  auto measure = [&](const std::string& name, double sparsity, const std::string& mode,
                     double& lo, double& hi) {
    models::ModelSpec spec;
    spec.arch = name;
    auto model = models::build_model(spec, {1, 28, 28}, 10, 1);
    if (sparsity >= 0) random_masks(*model, sparsity, 7);
    pruning::CsrSwitchOptions so;
    so.enabled = mode == "csr";
    so.threshold = 0.0;
    pruning::CsrSwitch csr(so, *model);
    csr.update();
    OptimizerOptions opt;
    opt.lr = 0.01f;
    opt.momentum = 0.9f;
    Optimizer optimizer(model->parameters(), opt);
    const int64_t sample = 28 * 28;
    int64_t k = 0;
    auto step = [&]() {
      const int64_t i = k++ % pool;
      Tensor x({o.batch, 1, 28, 28});
      std::copy_n(xs.f32() + i * o.batch * sample, o.batch * sample, x.f32());
      Tensor y({o.batch}, DType::i32);
      std::copy_n(ys.i32() + i * o.batch, o.batch, y.i32());
      Variable loss = softmax_cross_entropy(model->forward(Variable(x)), y);
      optimizer.zero_grad();
      loss.backward();
      optimizer.step(opt.lr);
    };
    for (int i = 0; i < o.warmup; ++i) step();
    std::vector<double> rates;
    for (int r = 0; r < o.repeats; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < o.steps; ++i) step();
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rates.push_back(double(o.steps) * o.batch / s);
    }
    std::vector<double> sorted = rates;
    std::sort(sorted.begin(), sorted.end());
    lo = sorted.front();
    hi = sorted.back();
    return sorted[sorted.size() / 2];
  };
  if (!o.sparsities.empty()) {
    std::printf("%-10s %8s", "model", "sparsity");
    for (const auto& m : o.modes) std::printf(" %14s", (m + " samples/s").c_str());
    if (o.modes.size() == 2) std::printf(" %8s", "ratio");
    std::printf("   (batch %d, %d threads, backend %s)\n", o.batch, o.threads, o.backend.c_str());
    for (const std::string& name : o.models)
      for (double sp : o.sparsities) {
        nlohmann::json row = {{"model", name}, {"sparsity", sp}, {"batch", o.batch},
                              {"threads", o.threads}, {"backend", o.backend}};
        std::printf("%-10s %7.1f%%", name.c_str(), 100 * sp);
        std::vector<double> rates;
        for (const auto& m : o.modes) {
          double lo, hi;
          rates.push_back(measure(name, sp, m, lo, hi));
          std::printf(" %14.0f", rates.back());
          std::fflush(stdout);
          row[m] = {{"samples_per_s", rates.back()}, {"min", lo}, {"max", hi}};
        }
        if (rates.size() == 2) {
          std::printf(" %7.2fx", rates[1] / rates[0]);
          row["ratio"] = rates[1] / rates[0];
        }
        std::printf("\n");
        std::fflush(stdout);
        out.push_back(row);
      }
    if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
    return 0;
  }
  for (const std::string& name : o.models) {
    double lo, hi;
    const double median = measure(name, -1, "dense", lo, hi);
    std::printf("sparsetrain %s batch=%d threads=%d backend=%s samples_per_s=%.0f (%.0f .. %.0f)\n",
                name.c_str(), o.batch, o.threads, o.backend.c_str(), median, lo, hi);
    std::fflush(stdout);
    out.push_back({{"model", name}, {"batch", o.batch}, {"threads", o.threads},
                   {"backend", o.backend}, {"samples_per_s", median}, {"min", lo}, {"max", hi}});
  }
  if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
  return 0;
}

}  // namespace st::bench
