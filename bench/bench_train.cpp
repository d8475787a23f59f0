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

namespace st::bench {

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
  for (const std::string& name : o.models) {
    models::ModelSpec spec;
    spec.arch = name;
    auto model = models::build_model(spec, {1, 28, 28}, 10, 1);
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
    const double median = sorted[sorted.size() / 2];
    std::printf("sparsetrain %s batch=%d threads=%d backend=%s samples_per_s=%.0f (%.0f .. %.0f)\n",
                name.c_str(), o.batch, o.threads, o.backend.c_str(), median, sorted.front(),
                sorted.back());
    std::fflush(stdout);
    out.push_back({{"model", name}, {"batch", o.batch}, {"threads", o.threads},
                   {"backend", o.backend}, {"samples_per_s", median},
                   {"min", sorted.front()}, {"max", sorted.back()}});
  }
  if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
  return 0;
}

}  // namespace st::bench
