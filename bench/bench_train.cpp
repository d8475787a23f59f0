// bench/bench_train.cpp — `sparsetrain bench train`: training samples/s per model.
// Protocol (mirrors bench/pytorch_train.py): random inputs (N(0,1), 1×28×28) and labels preloaded,
// batch B, SGD lr 0.01 momentum 0.9, `warmup` steps, then `repeats` × `steps` timed steps; report
// the median (and min..max) samples/s. With --sparsity the modes' models are built side by side
// and take turns, one timed repeat each per round (after up to 5 untimed steps); a ratio is the median
// of the rounds' ratios, each taken between repeats run back to back.
// The pool is 64 batches: after some 10 000 steps the model has memorized it, the loss is ~0 and
// the gradients become subnormal floats. On an Intel Xeon (AVX-512) CSR LeNet-300 at 95% then ran
// 171–228k samples/s over 20 000-step repeats against 399–450k with flush-to-zero set; the
// default steps are far from that (no difference measured).
// --device cuda: the same step on a GPU. The model is built and masked on the host (the same
// weights and masks as on the cpu), then model, optimizer state and the batch pool move to the
// device (like experiment/trainer.cpp; batches are preloaded there, as the host ones are in memory);
// the clock is read after device_synchronize (st::cuda::synchronize), so a repeat counts finished
// steps. Mode "cusparse" is CSR execution with cuSPARSE's products (sparse.impl "cusparse"); "csr"
// uses ours.
// A real GPU only: without one the command fails with the reason, and the CUDA emulator is refused.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/bench.h"
#include "bench/cuda_timing.h"
#include "core/ops.h"
#include "kernels/isa.h"
#include "kernels/onednn.h"
#include "core/optim.h"
#include "experiment/config.h"
#include "experiment/finite.h"
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
  const bool on_cuda = o.device == Device::cuda;
  const Device device = o.device;
  for (const std::string& m : o.modes)
    ST_CHECK(m != "cusparse" || on_cuda,
             "--mode cusparse: cuSPARSE runs on the GPU only (add --device cuda)");
  // First, before any work: is there a GPU worth timing?
  const std::string gpu_name = on_cuda ? gpu::require_timing_device("bench train --device cuda") : "";
  omp_set_num_threads(o.threads);
  set_dense_backend(o.backend);
  const int pool = 64;  // distinct batches cycled through
  Rng rng(1);
  Tensor xs({pool, o.batch, 1, 28, 28});
  for (int64_t i = 0; i < xs.numel(); ++i) xs.f32()[i] = rng.normal();
  Tensor ys({pool, o.batch}, DType::i32);
  for (int64_t i = 0; i < ys.numel(); ++i) ys.i32()[i] = static_cast<int32_t>(rng.below(10));
  // The pool as one tensor per batch, on the device that trains (a Tensor view cannot start
  // mid-storage): a step takes its batch as it is, as bench/pytorch_train.py takes its pre-sliced
  // views, so neither program times a copy of the input.
  std::vector<Tensor> xs_pool, ys_pool;
  {
    const int64_t sample = 28 * 28;
    for (int i = 0; i < pool; ++i) {
      Tensor x({o.batch, 1, 28, 28});
      std::copy_n(xs.f32() + i * o.batch * sample, o.batch * sample, x.f32());
      Tensor y({o.batch}, DType::i32);
      std::copy_n(ys.i32() + i * o.batch, o.batch, y.i32());
      xs_pool.push_back(on_cuda ? x.to(Device::cuda) : x);
      ys_pool.push_back(on_cuda ? y.to(Device::cuda) : y);
    }
  }
  nlohmann::json out = nlohmann::json::array();
  // The setting columns of a result row: as before on the cpu, the device and GPU on cuda.
  auto settings = [&](nlohmann::json row) {
    row["threads"] = o.threads;
    if (on_cuda) {
      row["device"] = "cuda";
      row["gpu"] = gpu_name;
    } else {
      row["backend"] = dense_backend_name(o.backend);
    }
    return row;
  };
  // One model in one mode, ready to step: built, masked, switched, with its optimizer.
  struct Runner {
    std::unique_ptr<models::Model> model;
    std::unique_ptr<pruning::CsrSwitch> csr;
    std::unique_ptr<Optimizer> optimizer;
    SparseImpl impl = SparseImpl::native;
    int64_t k = 0;
  };
  OptimizerOptions opt;
  opt.lr = 0.01f;
  opt.momentum = 0.9f;
  auto make_runner = [&](const std::string& name, double sparsity, const std::string& mode) {
    auto r = std::make_unique<Runner>();
    models::ModelSpec spec;
    spec.arch = experiment::choice_of<models::Arch>(name, "--model");
    r->model = models::build_model(spec, {1, 28, 28}, 10, 1);
    models::Model& model = *r->model;
    if (sparsity >= 0) random_masks(model, sparsity, 7);
    r->impl = mode == "cusparse" ? SparseImpl::cusparse : SparseImpl::native;
    set_sparse_impl(r->impl);
    if (on_cuda) {  // the trainer's order: optimizer on the host model, then both move
      r->optimizer = std::make_unique<Optimizer>(model.parameters(), opt);
      model.to(device);
      r->optimizer->to(device);
    }
    pruning::CsrSwitchOptions so;
    so.enabled = mode == "csr" || mode == "cusparse";
    so.threshold = 0.0;
    r->csr = std::make_unique<pruning::CsrSwitch>(so, model);
    r->csr->update();
    if (!on_cuda) r->optimizer = std::make_unique<Optimizer>(model.parameters(), opt);
    return r;
  };
  auto step = [&](Runner& r) {
    const int64_t i = r.k++ % pool;
    Variable loss = softmax_cross_entropy(r.model->forward(Variable(xs_pool[i])), ys_pool[i]);
    r.optimizer->zero_grad();
    loss.backward();
    r.optimizer->step(opt.lr);
    // As the trainer does: the cheap test every step, the message only on failure.
    if (!on_cuda && !experiment::parameters_finite(r.model->parameters()))
      experiment::check_parameters_finite(r.model->parameters(), "");
  };
  // rates[j][round]: samples/s of modes[j] in each round. The modes take turns, one repeat each
  // per round, so a machine whose speed drifts during the run (a shared or virtual one) slows
  // every mode alike and the ratios of one round compare like with like. Before each timed repeat
  // a few untimed steps bring the mode's model back into the caches the others used.
  auto measure = [&](const std::string& name, double sparsity, const std::vector<std::string>& modes) {
    std::vector<std::unique_ptr<Runner>> runners;
    for (const std::string& m : modes) {
      runners.push_back(make_runner(name, sparsity, m));  // leaves its mode's sparse impl set
      for (int i = 0; i < o.warmup; ++i) step(*runners.back());
    }
    const int rewarm = modes.size() > 1 ? std::min(o.warmup, 5) : 0;
    std::vector<std::vector<double>> rates(modes.size());
    for (int round = 0; round < o.repeats; ++round)
      for (size_t j = 0; j < modes.size(); ++j) {
        Runner& r = *runners[j];
        set_sparse_impl(r.impl);
        for (int i = 0; i < rewarm; ++i) step(r);
        device_synchronize(device);  // the warm-up / previous repeat's steps are not this one's
        auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < o.steps; ++i) step(r);
        device_synchronize(device);  // steps are queued on the GPU: count them once finished
        double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        rates[j].push_back(double(o.steps) * o.batch / s);
      }
    return rates;
  };
  struct Spread {
    double median, lo, hi;
  };
  auto spread = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return Spread{v[v.size() / 2], v.front(), v.back()};
  };
  // "(batch 64, 2 threads, backend onednn)" on the cpu, "(batch 64, cuda: NVIDIA H100 ...)" on a GPU.
  const std::string where = on_cuda ? "cuda: " + gpu_name
                                    : std::to_string(o.threads) + " threads, backend " + dense_backend_name(o.backend) +
                                          ", cpu kernels " + kernels::isa_name(kernels::active_isa()) +
                                          ", oneDNN " + kernels::onednn_isa_name();
  if (!o.sparsities.empty()) {
    std::printf("%-10s %8s", "model", "sparsity");
    std::vector<int> widths;  // of the numbers below each title: 14, wider under "cusparse ..."
    for (const auto& m : o.modes) {
      const std::string title = m + " samples/s";
      widths.push_back(std::max<int>(14, static_cast<int>(title.size()) - 1));
      std::printf(" %14s", title.c_str());
    }
    // Each mode over the first, named so ("csr/dense"): with --mode csr,dense the column reads
    // dense/csr, and 0.22x is then CSR running 4.5x faster, not a regression.
    std::vector<int> ratio_widths;
    for (size_t j = 1; j < o.modes.size(); ++j) {
      const std::string title = o.modes[j] + "/" + o.modes[0];
      ratio_widths.push_back(std::max<int>(8, static_cast<int>(title.size())));
      std::printf(" %*s", ratio_widths.back(), title.c_str());
    }
    std::printf("   (batch %d, %s)\n", o.batch, where.c_str());
    for (const std::string& name : o.models)
      for (double sp : o.sparsities) {
        nlohmann::json row = settings({{"model", name}, {"sparsity", sp}, {"batch", o.batch}});
        std::printf("%-10s %7.1f%%", name.c_str(), 100 * sp);
        std::fflush(stdout);
        const std::vector<std::vector<double>> rates = measure(name, sp, o.modes);
        for (size_t j = 0; j < o.modes.size(); ++j) {
          const Spread r = spread(rates[j]);
          std::printf(" %*.0f", widths[j], r.median);
          row[o.modes[j]] = {{"samples_per_s", r.median}, {"min", r.lo}, {"max", r.hi}};
        }
        // Each mode over the first: the median of the rounds' ratios (and their range).
        for (size_t j = 1; j < o.modes.size(); ++j) {
          std::vector<double> ratios;
          for (int round = 0; round < o.repeats; ++round) ratios.push_back(rates[j][round] / rates[0][round]);
          const Spread q = spread(ratios);
          std::printf(" %*.2fx", ratio_widths[j - 1] - 1, q.median);
          const std::string key = o.modes.size() == 2 ? "ratio" : "ratio_" + o.modes[j];
          row[key] = q.median;
          row[key + "_min"] = q.lo;
          row[key + "_max"] = q.hi;
        }
        std::printf("\n");
        std::fflush(stdout);
        out.push_back(row);
      }
    if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
    return 0;
  }
  for (const std::string& name : o.models) {
    const Spread r = spread(measure(name, -1, {"dense"})[0]);
    const double median = r.median, lo = r.lo, hi = r.hi;
    if (on_cuda)
      std::printf("sparsetrain %s batch=%d device=cuda (%s) samples_per_s=%.0f (%.0f .. %.0f)\n",
                  name.c_str(), o.batch, gpu_name.c_str(), median, lo, hi);
    else
      std::printf("sparsetrain %s batch=%d threads=%d backend=%s samples_per_s=%.0f (%.0f .. %.0f)\n",
                  name.c_str(), o.batch, o.threads, dense_backend_name(o.backend), median, lo, hi);
    std::fflush(stdout);
    out.push_back(settings({{"model", name}, {"batch", o.batch}, {"samples_per_s", median},
                            {"min", lo}, {"max", hi}}));
  }
  if (!o.json_path.empty()) std::ofstream(o.json_path) << out.dump(2) << "\n";
  return 0;
}

}  // namespace st::bench
