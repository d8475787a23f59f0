// bench/bench_width.cpp — `sparsetrain bench width`: a sparse MLP's training step at a fixed number
// of nonzeros while its hidden layers widen, to show whether the cost follows the nonzeros or the
// width. Model 784-h-h-10 built sparse from the start (no dense matrix): fc1 (784 → h) and fc3
// (h → 10) hold a quarter of the nonzeros each and fc2 (h → h) the rest, each layer capped at its
// size (a full layer is dense); patterns uniform at random (pruning/sparse_pattern.h), values by actual
// fan-in. A step is forward, softmax cross-entropy, backward and an SGD-momentum step on N(0,1)
// inputs; per width it prints the nonzeros, the bytes held (weights, gradients, optimizer state),
// the median step time over repeats and its ratio to the first width's. What grows with the width
// regardless of the nonzeros is the activations (batch × h floats per layer: bias, ReLU, their
// gradients), so at widths where batch × h approaches the nonzeros those passes show.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "bench/bench.h"
#include "core/csr_weight.h"
#include "core/optim.h"
#include "experiment/memory_estimate.h"
#include "models/builder.h"
#include "pruning/layers.h"
#include "pruning/sparse_pattern.h"

namespace st::bench {

int bench_width(const WidthBenchOptions& o) {
  omp_set_num_threads(o.threads);
  std::printf("%10s %12s %12s %12s %12s %8s   (batch %d, %d threads, %lld nonzeros asked)\n", "width", "nonzeros",
              "dense", "held", "step ms", "ratio", o.batch, o.threads, static_cast<long long>(o.nonzeros));
  double first_ms = 0;
  for (int h : o.widths) {
    models::ModelSpec spec;
    spec.arch = models::Arch::mlp;
    spec.hidden = {h, h};
    auto model = models::build_model(spec, {1, 28, 28}, 10, 1, /*allocate=*/false);
    Rng rng(7);
    const auto layers = pruning::prunable_layers(*model);
    // fc1 and fc3 a quarter each (capped at their size), fc2 the rest (capped likewise).
    int64_t budget[3];
    budget[0] = std::min(o.nonzeros / 4, layers[0].numel());
    budget[2] = std::min(o.nonzeros / 4, layers[2].numel());
    budget[1] = std::min(o.nonzeros - budget[0] - budget[2], layers[1].numel());
    int64_t nonzeros = 0, weights = 0;
    for (size_t l = 0; l < layers.size(); ++l) {
      const pruning::PrunableLayer& L = layers[l];
      weights += L.numel();
      const int64_t nnz = budget[l];
      nonzeros += nnz;
      if (nnz == L.numel()) continue;  // full: dense, initialized below
      kernels::CsrMatrix w = pruning::sample_pattern(static_cast<int>(L.rows), static_cast<int>(L.cols), nnz, rng);
      pruning::init_by_fan_in(w, models::Init::pytorch, rng, L.bias->var.value().f32());
      L.weight->csr = make_csr_weight(std::move(w), L.weight->shape, Device::cpu);
    }
    models::initialize(*model, models::Init::pytorch, rng);
    OptimizerOptions oo;
    oo.lr = 0.01f;
    Optimizer opt(model->parameters(), oo);
    Tensor x({o.batch, 1, 28, 28});
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = rng.normal();
    Tensor y({o.batch}, DType::i32);
    for (int i = 0; i < o.batch; ++i) y.i32()[i] = static_cast<int32_t>(rng.below(10));
    auto step = [&] {
      Variable loss = softmax_cross_entropy(model->forward(Variable(x)), y);
      opt.zero_grad();
      loss.backward();
      opt.step(0.01f);
    };
    for (int i = 0; i < o.warmup; ++i) step();
    std::vector<double> ms;
    for (int r = 0; r < o.repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < o.steps; ++i) step();
      ms.push_back(1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / o.steps);
    }
    std::sort(ms.begin(), ms.end());
    const double median = ms[ms.size() / 2];
    if (first_ms == 0) first_ms = median;
    double held = static_cast<double>(opt.bytes());
    for (const Parameter* p : model->parameters()) held += static_cast<double>(p->bytes());
    std::printf("%10d %12lld %12s %12s %12.2f %7.2fx\n", h, static_cast<long long>(nonzeros),
                experiment::bytes_text(static_cast<double>(weights) * 12).c_str(), experiment::bytes_text(held).c_str(),
                median, median / first_ms);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace st::bench
